package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
)

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// runBin runs pedos-dom0-update and returns its stdout, stderr and exit code.
func runBin(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return testbin.Run(t, exec.Command(testbin.Path(t, "pedos-dom0-update"), args...))
}

// A usage error is logged below the root the command line names, wherever
// the error comes on the line, and never below another one: the default
// root is a real host's /var/log.
func TestUsageErrorLoggedBelowTheNamedRoot(t *testing.T) {
	first, named := t.TempDir(), t.TempDir()
	stdout, stderr, code := runBin(t, "--json", "--root", first, "--bogus", "--root="+named)
	var rep struct {
		Exit    int    `json:"exit"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 2 || rep.Exit != 2 || !strings.Contains(rep.Message, "--bogus") {
		t.Fatalf("exit %d, report %+v (%v); stderr:\n%s", code, rep, err, stderr)
	}
	if log, err := os.ReadFile(filepath.Join(named, dom0.LogPath)); err != nil || !strings.Contains(string(log), "--bogus") {
		t.Errorf("the usage error is not in the named root's log: %v\n%s", err, log)
	}
	if _, err := os.Stat(filepath.Join(first, dom0.LogPath)); !os.IsNotExist(err) {
		t.Errorf("the usage error was logged below the first --root, which a later one replaced (%v)", err)
	}

	// A --root without a value names no root: nothing is logged, and the
	// run says so.
	_, stderr, code = runBin(t, "--root", first, "--bogus", "--root")
	if _, err := os.Stat(filepath.Join(first, dom0.LogPath)); code != 2 || !os.IsNotExist(err) ||
		!strings.Contains(stderr, "not in the update log: --root was given without a directory") {
		t.Errorf("exit %d, log below the first root: %v; stderr:\n%s", code, err, stderr)
	}
}

// A --root that does not exist is an error naming where dom0's rpm database
// should be, and nothing is made there.
func TestMissingRoot(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent")
	_, stderr, code := runBin(t, "--check-only", "--root", missing)
	if want := "no rpm database in " + filepath.Join(missing, "var/lib/rpm"); code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, want 1 saying %q; stderr:\n%s", code, want, stderr)
	}
	if _, err := os.Lstat(missing); !os.IsNotExist(err) {
		t.Errorf("%s was made (%v)", missing, err)
	}
}
