package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// ErrInterrupted is a call ended because pedos-dom0-update was told to
// stop (Ctrl-C, SIGTERM).
var ErrInterrupted = errors.New("interrupted")

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
		return ExitQrexecFailure, fmt.Errorf("%s did not answer before dom0's deadline (%s); the call was ended", domain, q.Timeout)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return ExitFailure, fmt.Errorf("%w: the call to %s was ended", ErrInterrupted, domain)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}
