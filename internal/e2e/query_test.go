package e2e

import (
	"strings"
	"testing"

	"pedos.dev/updates/internal/frontend"
)

// TestQueries: list, info and search are answered by the UpdateVM's real
// dnf alone. Its answer is on stdout, every line marked with its name and
// nothing else there (no download progress); nothing in dom0 changes.
func TestQueries(t *testing.T) {
	l := newLab(t)
	l.publish("hello-1.1-1")
	before := l.snapshot()
	for action, want := range map[string][]string{
		"list":   {"Available Packages", "hello.noarch ", " 1.1-1 ", " pedos-lab"},
		"info":   {"Name         : hello", "Version      : 1.1", "Repository   : pedos-lab"},
		"search": {"hello.noarch : PedOS test package hello"},
	} {
		stdout, stderr, code := l.run("dom0", "pedos-dom0-update", "--action="+action, "hello")
		if code != frontend.ExitOK {
			t.Errorf("--action=%s hello: exit %d\n%s", action, code, stderr)
			continue
		}
		for _, w := range want {
			if !strings.Contains(stdout, w) {
				t.Errorf("--action=%s hello: stdout lacks %q:\n%s", action, w, stdout)
			}
		}
		for line := range strings.Lines(stdout) {
			if !strings.HasPrefix(line, l.UpdateVM()+": ") || strings.Contains(line, "B/s |") {
				t.Errorf("--action=%s hello: stdout line %q is not the UpdateVM's marked answer", action, line)
			}
		}
	}
	stdout, stderr, code := l.run("dom0", "pedos-dom0-update", "--action=list", "nosuchpackage")
	if code != frontend.ExitFailure || stdout != "" || !strings.Contains(stderr, "No matching Packages") {
		t.Errorf("--action=list nosuchpackage: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	// A search that finds nothing says so (dnf's own line is hidden by -q).
	stdout, stderr, code = l.run("dom0", "pedos-dom0-update", "--action=search", "nosuchpackage")
	if code != frontend.ExitOK || stdout != "" || !strings.Contains(stderr, l.UpdateVM()+": No matches found for nosuchpackage.") {
		t.Errorf("--action=search nosuchpackage: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	l.assertUnchanged(before)
}
