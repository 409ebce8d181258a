package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// TestExitStatus: usage errors exit 2 with the reason, the lab's failures
// 1, and exec 125 when it cannot run the command (docs/man/pedos-lab.1.md).
// None of these needs a lab, or root.
func TestExitStatus(t *testing.T) {
	bin := testbin.Path(t, "pedos-lab")
	notALab := filepath.Join(t.TempDir(), "not-a-lab")
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"publish", "--dir", notALab, "requires=x"}, 2, `"requires=x" comes before any NAME-VERSION-RELEASE`},
		{[]string{"publish", "--dir", notALab}, 2, "nothing to publish"},
		{[]string{"publish", "--dir", notALab, "--time", "yesterday", "hello-1-1"}, 2, `--time "yesterday"`},
		{[]string{"attack", "--dir", notALab, "--only", "S1,ZZ9"}, 2, "--only ZZ9: no such row or table"},
		{[]string{"status", "--dir", notALab, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"down", "--dir", notALab, "now"}, 2, `unexpected argument "now"`},
		{[]string{"down", "--dir", notALab}, 1, notALab + " is not a lab directory"},
		{[]string{"publish", "--dir", notALab, "hello-1-1"}, 1, notALab + " is not a lab directory"},
		{[]string{"exec", "--dir", notALab, "dom0", "--", "true"}, 125, notALab + " is not a lab directory"},
	} {
		stdout, stderr, code := testbin.Run(t, exec.Command(bin, c.args...))
		if code != c.code || stdout != "" || !strings.HasPrefix(stderr, "pedos-lab: ") || !strings.Contains(stderr, c.stderr) {
			t.Errorf("pedos-lab %s: exit %d, stdout %q, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stdout, stderr, c.code, c.stderr)
		}
	}
	if _, err := os.Stat(notALab); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want it never created", notALab, err)
	}
}
