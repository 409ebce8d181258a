package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/lab"
	"pedos.dev/updates/internal/testbin"
)

// programs are what the lab copies into its domains.
var programs = []string{
	"pedos-lab", "pedos-dom0-update", "pedos-receive-updates", "pedos-download-dom0-updates",
	"qfile-agent", "qfile-dom0-unpacker", "qrexec-daemon", "qrexec-agent", "qrexec-client",
	"qrexec-client-vm", "pedos-run", "pedos-policy-eval", "pedos-rpmcheck",
}

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
	for _, p := range programs {
		testbin.Path(t, p)
	}
	binDir := filepath.Dir(testbin.Path(t, "pedos-lab"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Dir: t.TempDir(), BinDir: binDir})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
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
// the rpm database files, the cached repository and the freshness state.
type dom0Snapshot struct {
	Installed  []string
	RPMDB      string
	CachedRepo string
	Freshness  string
}

func (l *testLab) snapshot() dom0Snapshot {
	l.t.Helper()
	root := l.Root("dom0")
	return dom0Snapshot{
		Installed:  l.installed(),
		RPMDB:      treeDigest(l.t, filepath.Join(root, "var/lib/rpm"), "rpmdb.sqlite"),
		CachedRepo: treeDigest(l.t, filepath.Join(root, dom0.CachedRepoDir), ""),
		Freshness:  treeDigest(l.t, filepath.Join(root, "var/lib/PedOS/state"), "freshness.json"),
	}
}

func (l *testLab) assertUnchanged(before dom0Snapshot) {
	l.t.Helper()
	after := l.snapshot()
	if fmt.Sprint(before.Installed) != fmt.Sprint(after.Installed) {
		l.t.Errorf("installed packages changed: %v -> %v", before.Installed, after.Installed)
	}
	if before.RPMDB != after.RPMDB {
		l.t.Errorf("dom0's rpm database changed")
	}
	if before.CachedRepo != after.CachedRepo {
		l.t.Errorf("dom0's cached repository changed")
	}
	if before.Freshness != after.Freshness {
		l.t.Errorf("dom0's freshness state changed")
	}
}

// treeDigest hashes the names and contents of the regular files below dir
// (only the file called only, when set). A missing dir hashes as empty.
func treeDigest(t *testing.T, dir, only string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() || (only != "" && d.Name() != only) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s %x\n", rel, sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatalf("hashing %s: %v", dir, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
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
