package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/attack"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/lab"
	"pedos.dev/updates/internal/testbin"
)

// testLab is a running lab for one test, stopped when the test ends.
type testLab struct {
	*lab.Lab
	t *testing.T
}

func newLab(t *testing.T) *testLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root (namespaces, mounts)")
	}
	for _, p := range attack.LabPrograms {
		testbin.Path(t, p)
	}
	binDir := filepath.Dir(testbin.Path(t, "pedos-lab"))
	dir := t.TempDir()
	forget := testbin.StopOnAbort(func() { _ = lab.Down(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Dir: dir, BinDir: binDir})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
		forget()
	})
	return &testLab{Lab: l, t: t}
}

// run runs a command in a domain and returns its output and exit status.
func (l *testLab) run(domain string, args ...string) (stdout, stderr string, code int) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, errOut, code, err := l.Exec(ctx, domain, nil, args...)
	if err != nil {
		l.t.Fatalf("%s: %s: %v", domain, strings.Join(args, " "), err)
	}
	return string(out), string(errOut), code
}

// update runs pedos-dom0-update --json in dom0 and decodes its report.
func (l *testLab) update(args ...string) (frontend.Report, string) {
	l.t.Helper()
	out, errOut, code := l.run("dom0", append([]string{"pedos-dom0-update", "--json"}, args...)...)
	var rep frontend.Report
	if code != frontend.ExitUsage {
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			l.t.Fatalf("pedos-dom0-update %v: exit %d, no JSON report (%v)\nstdout:\n%s\nstderr:\n%s", args, code, err, out, errOut)
		}
	}
	if rep.Exit != code && code != frontend.ExitUsage {
		l.t.Fatalf("report says exit %d, process exited %d", rep.Exit, code)
	}
	rep.Exit = code
	return rep, errOut
}

func (l *testLab) publish(specs ...string) {
	l.t.Helper()
	if _, err := l.Publish(lab.PublishOptions{Specs: specs}); err != nil {
		l.t.Fatalf("publish %v: %v", specs, err)
	}
}

// installed is dom0's package set, NAME-VERSION-RELEASE sorted.
func (l *testLab) installed() []string {
	l.t.Helper()
	out, errOut, code := l.run("dom0", "rpm", "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\n")
	if code != 0 {
		l.t.Fatalf("rpm -qa in dom0: exit %d: %s", code, errOut)
	}
	var pkgs []string
	for _, p := range strings.Fields(out) {
		if !strings.HasPrefix(p, "gpg-pubkey-") {
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	return pkgs
}

// dom0Snapshot is what no failed update may change: installed packages,
// the rpm database, the cached repository, the freshness state, and which
// files exist outside the paths every update writes (internal/attack, the
// adversarial suite, checks the same).
type dom0Snapshot = attack.Dom0State

func (l *testLab) snapshot() dom0Snapshot {
	l.t.Helper()
	s, err := attack.CaptureDom0(l.Lab, l.installed())
	if err != nil {
		l.t.Fatalf("capturing dom0's state: %v", err)
	}
	return s
}

// assertUnchanged requires that nothing changed in dom0 since before, but
// below the allowed paths (relative to dom0's root): what the test itself
// changed.
func (l *testLab) assertUnchanged(before dom0Snapshot, allowed ...string) {
	l.t.Helper()
	for _, diff := range before.Unchanged(l.snapshot(), allowed...) {
		l.t.Errorf("dom0 changed: %s", diff)
	}
}

// treeDigest hashes the names and contents of the regular files below dir
// (only the file called only, when set). A missing dir hashes as empty.
func treeDigest(t *testing.T, dir, only string) string {
	t.Helper()
	d, err := attack.TreeDigest(dir, only)
	if err != nil {
		t.Fatalf("hashing %s: %v", dir, err)
	}
	return d
}

// cachedPackages lists the package files in dom0's cached repository.
func (l *testLab) cachedPackages() []string {
	l.t.Helper()
	entries, err := os.ReadDir(filepath.Join(l.Root("dom0"), dom0.CachedRepoDir, "rpm"))
	if err != nil && !os.IsNotExist(err) {
		l.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// holdStateLock takes the lock file name in dom0's state directory, as
// another process there would, until the test ends.
func (l *testLab) holdStateLock(name string) {
	l.t.Helper()
	path := filepath.Join(l.Root("dom0"), dom0.StateDir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		l.t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		l.t.Fatal(err)
	}
}
