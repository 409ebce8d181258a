package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/qfile"
	"pedos.dev/updates/internal/testbin"
)

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// Help asked for goes to stdout with 0; a usage error says what is wrong on stderr, writes no
// status, and exits 2. An empty USER is such an error: it would keep root's rights silently.
func TestUsage(t *testing.T) {
	bin := testbin.Path(t, "qfile-dom0-unpacker")
	for _, tc := range []struct {
		args             []string
		code             int
		stdout, inStderr string
	}{
		{[]string{"--help"}, 0, "usage: qfile-dom0-unpacker", ""},
		{[]string{"-h"}, 0, "usage: qfile-dom0-unpacker", ""},
		{[]string{"--bogus", "nobody", t.TempDir()}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"", t.TempDir()}, 2, "", "USER is empty"},
		{[]string{"nobody"}, 2, "", "want USER and DIR, got 1 operand(s)"},
		{[]string{"nobody", t.TempDir(), "--timeout", "0s"}, 2, "", "--timeout 0s is not positive"},
	} {
		stdout, stderr, code := testbin.Run(t, exec.Command(bin, tc.args...))
		if code != tc.code || !strings.HasPrefix(stdout, tc.stdout) || tc.stdout == "" && stdout != "" ||
			!strings.Contains(stderr, tc.inStderr) || tc.code == 0 && stderr != "" {
			t.Errorf("%q: exit %d, stdout %.40q, stderr %.80q; want exit %d, stdout starting %q, stderr with %q",
				tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.inStderr)
		}
	}
}

// A DIR the user cannot write is refused before the stream is read, with a message that says
// so rather than the first file's "permission denied".
func TestDirNotWritable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to switch to nobody")
	}
	stdout, stderr, code := testbin.Run(t, exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), "nobody", t.TempDir(), "--only-regular-files"))
	if code != int(syscall.EACCES) || stdout == "" || !strings.Contains(stderr, "is not writable by the user the unpacker runs as (nobody)") {
		t.Errorf("exit %d, %d bytes of status, stderr %q; want EACCES with a status and the reason", code, len(stdout), stderr)
	}
}

// A DIR that is not a directory is ENOTDIR, in the status and the exit code, and a FIFO
// there does not hold the unpacker before its deadline starts.
func TestDirNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, fifo} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // killed after
		defer cancel()
		cmd := exec.CommandContext(ctx, testbin.Path(t, "qfile-dom0-unpacker"), "nobody", dir, "--only-regular-files")
		stdout, stderr, code := testbin.Run(t, cmd)
		if code != int(syscall.ENOTDIR) || stdout == "" || !strings.Contains(stderr, dir+": not a directory") {
			t.Errorf("%s: exit %d, %d bytes of status, stderr %q; want ENOTDIR with a status and the path", dir, code, len(stdout), stderr)
		}
	}
}

// The log line of a refusal the spec gives a code ends with the code's name, not the C
// library's misleading words for it; other errors keep theirs.
func TestSaid(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf(`"l": unsafe symlink target: %w`, syscall.ENOLINK), `"l": unsafe symlink target (ENOLINK)`},
		{fmt.Errorf("refused a name (S1, S2): the name has an empty component: %w", syscall.EILSEQ), "refused a name (S1, S2): the name has an empty component (EILSEQ)"},
		{fmt.Errorf(`"a": stream ended inside a file (S6): %w`, syscall.Errno(qfile.LegalEOF)), `"a": stream ended inside a file (S6) (legal EOF)`},
		{fmt.Errorf(`"a": %w`, syscall.EEXIST), `"a": file exists`},
		{errors.New("no errno"), "no errno"},
	} {
		if got := said(tc.err); got != tc.want {
			t.Errorf("said(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Of two bad limits the error names the same one every time, whatever the
// order Go ranges over maps in.
func TestLimitsFromEnvNamesTheFirstBadOne(t *testing.T) {
	t.Setenv("UPDATES_MAX_BYTES", "lots")
	t.Setenv("UPDATES_MAX_FILES", "0")
	for range 20 {
		if _, _, err := limitsFromEnv(); err == nil || !strings.HasPrefix(err.Error(), `UPDATES_MAX_BYTES="lots"`) {
			t.Fatalf("limitsFromEnv: %v, want UPDATES_MAX_BYTES named", err)
		}
	}
}
