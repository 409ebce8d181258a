package updatevm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// ReceiveService is dom0's service that takes the delivery.
const ReceiveService = "PedOS.ReceiveUpdates"

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
func (u *UpdateVM) Send(ctx context.Context, s Sender, session string, files []string) error {
	args := []string{"dom0", ReceiveService + "+" + session, s.QfileAgent}
	if s.Progress {
		args = append(args, "--progress")
	}
	cmd := exec.CommandContext(ctx, s.QrexecClientVM, append(args, files...)...)
	cmd.Stdout, cmd.Stderr = u.Log, u.Log
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return &SendError{Program: s.QrexecClientVM, Code: exit.ExitCode()}
		}
		return fmt.Errorf("sending to dom0: %w", err)
	}
	return os.RemoveAll(u.packagesDir())
}

// qrexec-client-vm's own exit statuses (docs/man/qrexec-client-vm.1.md):
// the others are qfile-agent's.
const (
	ExitQrexecFailure = 125
	ExitRefused       = 126 // dom0's policy refused the call
)

// SendError is a send that qrexec-client-vm ended with a non-zero status.
type SendError struct {
	Program string
	Code    int
}

func (e *SendError) Error() string {
	switch e.Code {
	case ExitRefused:
		return fmt.Sprintf("dom0 refused the delivery: its qrexec policy or its receive service refused the call (%s exit %d)", e.Program, e.Code)
	case ExitQrexecFailure:
		return fmt.Sprintf("qrexec could not reach dom0's %s (%s exit %d)", ReceiveService, e.Program, e.Code)
	}
	return fmt.Sprintf("sending to dom0 failed (%s exit %d)", e.Program, e.Code)
}
