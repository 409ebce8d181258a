package updatevm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"pedos.dev/updates/internal/programs"
	"pedos.dev/updates/internal/updatecall"
)

// Sender names the programs that carry the delivery to dom0.
type Sender struct {
	QrexecClientVM string // qrexec-client-vm
	QfileAgent     string // qfile-agent
	Progress       bool   // ask qfile-agent for progress lines on stderr
}

// Send streams files to dom0's receive service under the session id, and
// empties the download directory once dom0 has acknowledged them. An empty
// list still calls dom0, so that it can tell "nothing new" from "nothing
// arrived".
//
// qfile-agent is not qrexec-client-vm's LOCAL_PROGRAM, whose exit status
// would be the only one (qrexec.md): the two run side by side, joined by
// pipes, so that a refusal by dom0's service after policy let the call
// through (126: another delivery running, no such session) is told apart
// from the broken pipe it leaves qfile-agent with.
func (u *UpdateVM) Send(ctx context.Context, s Sender, session string, files []string) error {
	var agentArgs []string
	if s.Progress {
		agentArgs = append(agentArgs, "--progress")
	}
	client := exec.CommandContext(ctx, s.QrexecClientVM, "dom0", updatecall.ReceiveService+"+"+session)
	agent := exec.CommandContext(ctx, s.QfileAgent, append(agentArgs, files...)...)
	log := u.Log
	if _, ok := log.(*os.File); !ok {
		// exec copies into a writer that is no file from a goroutine per
		// command: two of them here.
		log = &lockedWriter{w: log}
	}
	client.Stderr, agent.Stderr = log, log
	if err := startJoined(client, agent); err != nil {
		return fmt.Errorf("sending to dom0: %w", err)
	}
	agentErr, clientErr := agent.Wait(), client.Wait()
	// The client's exit code is the service's; a signal is its own end.
	code, clientExited := exitCode(clientErr)
	agentCode, agentRan := programs.ExitStatus(agentErr)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("sending to dom0: %w", ctx.Err())
	case code == ExitQrexecFailure || code == ExitRefused || code == ExitNoService:
		return &SendError{Program: s.QrexecClientVM, Code: code}
	case agentErr != nil && agentRan:
		return &SendError{Program: s.QfileAgent, Code: agentCode}
	case agentErr != nil:
		return fmt.Errorf("sending to dom0: qfile-agent: %w", agentErr)
	case !clientExited:
		return fmt.Errorf("sending to dom0: %w", clientErr)
	}
	// Any other status of qrexec-client-vm is the receive service's, which
	// read the whole delivery: dom0's result says what it made of it.
	return os.RemoveAll(u.packagesDir())
}

// startJoined starts client and agent, each one's stdout the other's
// stdin; if either cannot start, neither runs.
func startJoined(client, agent *exec.Cmd) error {
	fromAgent, toClient, err := os.Pipe()
	if err != nil {
		return err
	}
	fromClient, toAgent, err := os.Pipe()
	if err != nil {
		fromAgent.Close()
		toClient.Close()
		return err
	}
	client.Stdin, agent.Stdout = fromAgent, toClient
	agent.Stdin, client.Stdout = fromClient, toAgent
	err = client.Start()
	if err == nil {
		if err = agent.Start(); err != nil {
			client.Process.Kill()
			client.Wait()
		}
	}
	// Only the children may hold the pipes: with our ends open, neither
	// would see the other end (EOF, EPIPE).
	for _, f := range []*os.File{fromAgent, toClient, fromClient, toAgent} {
		f.Close()
	}
	return err
}

// exitCode is a finished command's exit code (0 for nil); exited is false
// when a signal ended it or it did not run.
func exitCode(err error) (code int, exited bool) {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), exit.Exited()
	}
	return 0, err == nil
}

// The exit statuses of qrexec-client-vm that say the delivery was not read
// (docs/man/qrexec-client-vm.1.md); any other is the receive service's.
const (
	// ExitQrexecFailure: the call did not start.
	ExitQrexecFailure = 125
	// ExitNoService: dom0's qrexec found no such service, or a service
	// script's shell found no program it runs (a service file that names
	// a missing program is 125: the daemon cannot start it).
	ExitNoService = 127
	// ExitRefused: dom0's qrexec policy refused the call, or its receive
	// service did before reading a byte (another delivery running, no
	// such session: overview.md step 5).
	ExitRefused = 126
)

// SendError is a send that one of its two programs, Program, ended with
// the non-zero status Code.
type SendError struct {
	Program string
	Code    int
}

func (e *SendError) Error() string {
	program := filepath.Base(e.Program)
	switch e.Code {
	case ExitRefused:
		return fmt.Sprintf("dom0 refused the delivery: its qrexec policy or its receive service refused the call (%s exit %d)", program, e.Code)
	case ExitQrexecFailure:
		return fmt.Sprintf("qrexec could not reach dom0's %s (%s exit %d)", updatecall.ReceiveService, program, e.Code)
	case ExitNoService:
		return fmt.Sprintf("dom0 has no %s service: its qrexec found no such service file, or a service script found no program it runs (is dom0's pedos package installed?) (%s exit %d)", updatecall.ReceiveService, program, e.Code)
	}
	return fmt.Sprintf("sending to dom0 failed (%s exit %d)", program, e.Code)
}

// lockedWriter lets several goroutines write to w, one write at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
