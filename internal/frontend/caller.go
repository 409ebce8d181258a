package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"pedos.dev/updates/internal/dom0"
)

// ErrInterrupted is a call ended because pedos-dom0-update was told to
// stop (Ctrl-C, SIGTERM).
var ErrInterrupted = errors.New("interrupted (Ctrl-C, SIGTERM or SIGHUP)")

// ErrCallDeadline marks a call dom0 ended at its deadline (C7).
var ErrCallDeadline = errors.New("the call was ended")

// ErrCallFailed marks a call dom0's own qrexec-client could not make (it
// reached no agent, say), in its words.
var ErrCallFailed = errors.New("dom0's qrexec call failed")

// QrexecCaller runs commands in a domain with qrexec-client (dom0's calls
// are not subject to policy; qrexec.md): ours, or a PedOS/Qubes host's own,
// which takes the same -d DOMAIN USER:COMMAND.
type QrexecCaller struct {
	Client  string        // path of qrexec-client
	Timeout time.Duration // the call is killed after this (C7)
	// OwnErrors says that Client is this project's qrexec-client, which
	// writes its own errors to a descriptor of their own (--errors-fd):
	// Run returns them as its error, and stderr then holds only the
	// domain's. A host's own client mixes the two on stderr.
	OwnErrors bool
}

// maxOwnErrorBytes bounds what is read of qrexec-client's own errors (one
// line is all it writes).
const maxOwnErrorBytes = 4096

// outputWait is how long a call's output and the client's errors are
// still read after it exited or was killed: long enough for a person's
// slow terminal, short against dom0's deadline (a variable for tests).
var outputWait = 30 * time.Second

// Run implements Caller. Every argument has passed forwardable or is
// ours, so single quotes make it one shell word in the domain.
func (q QrexecCaller) Run(ctx context.Context, domain string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	ctx, cancel := context.WithTimeout(ctx, q.Timeout)
	defer cancel()
	args := []string{"-d", domain, "root:" + strings.Join(quoted, " ")}
	var own *clientErrors
	if q.OwnErrors {
		var err error
		if own, err = readClientErrors(); err != nil {
			return ExitQrexecFailure, err
		}
		args = append([]string{"--errors-fd", "3"}, args...)
	}
	cmd := exec.CommandContext(ctx, q.Client, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// Something the client started (an agent=exec: transport's command)
	// may hold its output after it was killed at the deadline: its copies
	// end then, not with that process (C7).
	cmd.WaitDelay = outputWait
	if own != nil {
		cmd.ExtraFiles = []*os.File{own.w}
	}
	err := cmd.Run()
	ownErr := own.end()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ExitQrexecFailure, fmt.Errorf("%s did not answer before dom0's deadline (%s); %w", domain, q.Timeout, ErrCallDeadline)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return ExitFailure, fmt.Errorf("%w: the call to %s was ended", ErrInterrupted, domain)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0; what something it started still held is lost.
		err = nil
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return 0, err
	}
	// qrexec-client passes a command's death by a signal on as its exit
	// status (128+N): a signal here ended dom0's own qrexec-client.
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if sig := ws.Signal(); sig == syscall.SIGINT || sig == syscall.SIGHUP {
			// The terminal's Ctrl-C or hangup, seen before ours ended ctx.
			return ExitFailure, fmt.Errorf("%w: the call to %s was ended", ErrInterrupted, domain)
		}
		return ExitQrexecFailure, fmt.Errorf("dom0's %s was killed by signal %d (%s) during the call to %s", filepath.Base(q.Client), ws.Signal(), ws.Signal(), domain)
	}
	// The client's own failure (it reached no agent, say) is dom0's to
	// tell, not a line of the domain's.
	return exit.ExitCode(), ownErr
}

// clientErrors is what this project's qrexec-client says of its own
// failures, on the pipe it is given as descriptor 3 (--errors-fd 3).
type clientErrors struct {
	r, w *os.File // ours, the client's
	text strings.Builder
	read chan struct{}
}

func readClientErrors() (*clientErrors, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c := &clientErrors{r: r, w: w, read: make(chan struct{})}
	go func() {
		_, _ = io.Copy(&c.text, io.LimitReader(r, maxOwnErrorBytes))
		_, _ = io.Copy(io.Discard, r)
		close(c.read)
	}()
	return c, nil
}

// end is, once the client has exited, what it said as an error (nil:
// nothing, or c is nil).
func (c *clientErrors) end() error {
	if c == nil {
		return nil
	}
	c.w.Close() // the client's copy went with it: the reader sees the end
	select {
	case <-c.read:
	case <-time.After(outputWait): // something it started holds a copy
	}
	c.r.Close()
	<-c.read
	if msg := strings.TrimSpace(c.text.String()); msg != "" {
		return fmt.Errorf("%w: %s", ErrCallFailed, oneLine(msg))
	}
	return nil
}

// CheckQrexecClient says, before anything starts, whether c's
// qrexec_client can be run: a mistyped one would otherwise show only at the
// first call, as its fork/exec error (exit 125) naming no setting. (Our own
// qrexec-client, the default, is found beside pedos-dom0-update or in PATH
// at the call, whose error names it.)
func CheckQrexecClient(c dom0.Config) error {
	if c.QrexecClient == "" {
		return nil
	}
	_, err := exec.LookPath(c.QrexecClient)
	if execErr, ok := errors.AsType[*exec.Error](err); ok {
		err = execErr.Err // it would name the file a second time
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrPermission):
		err = fmt.Errorf("%w (not an executable file)", err)
	}
	return fmt.Errorf("%s: qrexec_client %s cannot be run: %w; nothing was sent", dom0.ConfigPath, c.QrexecClient, err)
}
