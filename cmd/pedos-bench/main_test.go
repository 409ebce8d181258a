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

// TestBadMicroFailsBeforeTheRun: a --micro file that cannot be read ends the
// program before it measures anything (a run takes minutes, and its results
// were lost), naming the option; nothing is written to --out.
func TestBadMicroFailsBeforeTheRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a run needs root: without it the program stops before reading --micro anyway")
	}
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(testbin.Path(t, "pedos-bench"), "--quick", "--only", "receive", "--micro", "/nonexistent/micro.txt",
		"--work", t.TempDir(), "--out", out)
	_, stderr, code := testbin.Run(t, cmd)
	if code != 1 || !strings.Contains(stderr, "--micro: open /nonexistent/micro.txt") || strings.Contains(stderr, "receive") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming --micro before any measurement", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was made", out)
	}
}

// A --bin without the programs (a relative one read from another directory)
// ends the program before it generates anything, naming the option; nothing
// is written to --out.
func TestMissingProgramsFailBeforeTheRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a run needs root: without it the program stops before looking at --bin")
	}
	// Empty, or holding the programs' names as files that cannot run.
	notExecutable := t.TempDir()
	for _, program := range []string{"pedos-receive-updates", "qfile-dom0-unpacker", "qfile-agent", "pedos-lab"} {
		if err := os.WriteFile(filepath.Join(notExecutable, program), []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, bin := range []string{t.TempDir(), notExecutable} {
		out := filepath.Join(t.TempDir(), "out")
		cmd := exec.Command(testbin.Path(t, "pedos-bench"), "--quick", "--only", "receive", "--bin", bin, "--work", t.TempDir(), "--out", out)
		_, stderr, code := testbin.Run(t, cmd)
		if code != 1 || !strings.Contains(stderr, "holds no program pedos-receive-updates") || strings.Contains(stderr, "generating") {
			t.Errorf("--bin %s: exit %d, stderr %q; want exit 1 naming --bin before any work", bin, code, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s was made", out)
		}
	}
}
