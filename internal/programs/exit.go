package programs

import (
	"errors"
	"os/exec"
	"syscall"
)

// ExitStatus is the status a shell reports for a command that ran, given
// what Run or Wait returned: 0 for nil, its exit code, or 128+N when signal
// N ended it (exec's own ExitCode says -1 then, which reads as a code the
// command chose). ran is false when err says it did not run or end.
func ExitStatus(err error) (status int, ran bool) {
	if err == nil {
		return 0, true
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return 0, false
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), true
	}
	return exit.ExitCode(), true
}
