package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// QrexecCaller runs commands in a domain with qrexec-client (dom0's calls
// are not subject to policy; qrexec.md): ours, or a PedOS/Qubes host's own,
// which takes the same -d DOMAIN USER:COMMAND.
type QrexecCaller struct {
	Client  string        // path of qrexec-client
	Timeout time.Duration // the call is killed after this (C7)
}

// Run implements Caller. Every argument has passed forwardable or is
// ours, so single quotes make it one shell word in the domain.
func (q QrexecCaller) Run(ctx context.Context, domain string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	ctx, cancel := context.WithTimeout(ctx, q.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, q.Client, "-d", domain, "root:"+strings.Join(quoted, " "))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ExitQrexecFailure, fmt.Errorf("%s did not answer before dom0's deadline (%s); %w", domain, q.Timeout, ErrCallDeadline)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return ExitFailure, fmt.Errorf("%w: the call to %s was ended", ErrInterrupted, domain)
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
	return exit.ExitCode(), nil
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
