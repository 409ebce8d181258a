package frontend

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
)

// QrexecCaller runs commands in a domain with qrexec-client (dom0's calls
// are not subject to policy; qrexec.md).
type QrexecCaller struct {
	Client string   // path of qrexec-client
	Args   []string // extra options, e.g. --timeout
}

// Run implements Caller. Every argument has passed forwardable or is
// ours, so single quotes make it one shell word in the domain.
func (q QrexecCaller) Run(ctx context.Context, domain string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	args := append(append([]string{"-d", domain}, q.Args...), "root:"+strings.Join(quoted, " "))
	cmd := exec.CommandContext(ctx, q.Client, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}
