package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// TestReplot: --replot draws the committed results again and says where the
// plot went; an option that chooses what to measure is a usage error with
// --replot, not silently ignored. None of this needs root.
func TestReplot(t *testing.T) {
	bin := testbin.Path(t, "pedos-bench")
	saved, err := filepath.Abs("../../bench/results.json")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	stdout, stderr, code := testbin.Run(t, exec.Command(bin, "--replot", saved, "--out", out))
	if png := filepath.Join(out, "results.png"); code != 0 || !strings.Contains(stdout, "==") || stderr != "pedos-bench: wrote "+png+"\n" {
		t.Errorf("--replot: exit %d, stderr %q, stdout %d bytes; want the table and %s", code, stderr, len(stdout), png)
	}
	for _, option := range [][]string{{"--only", "receive"}, {"--quick"}, {"--seed", "2"}} {
		args := append([]string{"--replot", saved, "--out", out}, option...)
		stdout, stderr, code := testbin.Run(t, exec.Command(bin, args...))
		if want := "pedos-bench: " + option[0] + ": --replot measures nothing, only --out goes with it\n"; code != 2 || stdout != "" || !strings.HasPrefix(stderr, want) {
			t.Errorf("pedos-bench %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(args, " "), code, stdout, stderr, want)
		}
	}
}
