package programs

import (
	"errors"
	"os/exec"
	"testing"
)

// A command killed by a signal has the shell's 128+N, not exec's -1; one
// that never ran has no status.
func TestExitStatus(t *testing.T) {
	for _, c := range []struct {
		script string
		status int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -KILL $$", 137},
		{"kill -TERM $$", 143},
	} {
		status, ran := ExitStatus(exec.Command("/bin/sh", "-c", c.script).Run())
		if !ran || status != c.status {
			t.Errorf("sh -c %q: status %d, ran %v; want %d, true", c.script, status, ran, c.status)
		}
	}
	if _, ran := ExitStatus(exec.Command("/nonexistent/program").Run()); ran {
		t.Error("a program that could not start: ran is true")
	}
	if _, ran := ExitStatus(errors.New("not an exit")); ran {
		t.Error("an error that is not an exit: ran is true")
	}
}
