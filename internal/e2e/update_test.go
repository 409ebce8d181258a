package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/lab"
)

func TestUpdateWithNewDependency(t *testing.T) {
	l := newLab(t)
	l.publish("libbar-1.0-1", "libfoo-2.0-1", "hello-1.1-1 requires=libfoo>=2.0 requires=libbar")
	rep, stderr := l.update("-y")
	if rep.Exit != 0 || rep.Result == nil || !rep.Result.Accepted {
		t.Fatalf("update: %+v\n%s", rep, stderr)
	}
	want := []string{"hello-1.1-1", "libbar-1.0-1", "libfoo-2.0-1"}
	if got := l.installed(); !slices.Equal(got, want) {
		t.Errorf("installed after the update: %v, want %v", got, want)
	}
	if len(rep.Result.Freshness) != 1 || rep.Result.Freshness[0].Status != "fresh" {
		t.Errorf("freshness: %+v, want pedos-lab fresh", rep.Result.Freshness)
	}
	if !strings.Contains(stderr, "freshness: repo pedos-lab: fresh") {
		t.Errorf("the person is not told the metadata is fresh:\n%s", stderr)
	}
	// The UpdateVM sent only this transaction and then cleared its downloads.
	if n := len(rep.Result.Packages); n != 3 {
		t.Errorf("%d packages delivered, want the transaction's 3", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(l.Root(l.UpdateVM()), "var/lib/PedOS/dom0-updates/packages")); len(entries) != 0 {
		t.Errorf("the UpdateVM kept %d downloaded files after a successful send", len(entries))
	}
	// A second run finds nothing new: exit 0, and says so.
	rep, stderr = l.update("-y")
	if rep.Exit != 0 || !strings.Contains(stderr, "nothing to do") {
		t.Errorf("second update: exit %d\n%s", rep.Exit, stderr)
	}
}

func TestInstallNewPackage(t *testing.T) {
	l := newLab(t)
	l.publish("libbaz-1.0-1", "tool-2.0-1 requires=libbaz")
	rep, stderr := l.update("-y", "--action=install", "tool")
	if rep.Exit != 0 {
		t.Fatalf("install: exit %d\n%s", rep.Exit, stderr)
	}
	got := l.installed()
	if !slices.Contains(got, "tool-2.0-1") || !slices.Contains(got, "libbaz-1.0-1") {
		t.Errorf("installed: %v, want tool and its dependency libbaz", got)
	}
	if slices.Contains(got, "hello-1.1-1") {
		t.Errorf("install of tool also upgraded hello: %v", got)
	}
}

func TestCheckOnly(t *testing.T) {
	l := newLab(t)
	before := l.snapshot()
	if rep, stderr := l.update("--check-only"); rep.Exit != 0 {
		t.Errorf("--check-only with no updates: exit %d, want 0\n%s", rep.Exit, stderr)
	}
	l.publish("hello-1.1-1")
	rep, stderr := l.update("--check-only")
	if rep.Exit != frontend.ExitUpdatesAvailable {
		t.Errorf("--check-only with an update: exit %d, want 100\n%s", rep.Exit, stderr)
	}
	// The list for scripts, from the UpdateVM's real dnf.
	want := []frontend.AvailableUpdate{{Name: "hello", NEVRA: "hello-1.1-1.noarch", Repo: lab.RepoID}}
	if !slices.Equal(rep.Available, want) {
		t.Errorf("--check-only listed %+v, want %+v\n%s", rep.Available, want, stderr)
	}
	// A package that replaces an installed one is listed too, as dnf's
	// check-update lists it ("Obsoleting Packages"); repoquery --upgrades
	// leaves it out.
	l.publish("libfoo-ng-2.0-1 obsoletes=libfoo<2.0 provides=libfoo=2.0")
	rep, stderr = l.update("--check-only")
	want = append(want, frontend.AvailableUpdate{Name: "libfoo-ng", NEVRA: "libfoo-ng-2.0-1.noarch", Repo: lab.RepoID})
	if rep.Exit != frontend.ExitUpdatesAvailable || !slices.Equal(rep.Available, want) {
		t.Errorf("--check-only with a replacement: exit %d, listed %+v, want 100 and %+v\n%s", rep.Exit, rep.Available, want, stderr)
	}
	l.assertUnchanged(before)
}

func TestDownloadOnlyThenClean(t *testing.T) {
	l := newLab(t)
	l.publish("hello-1.1-1")
	before := l.installed()
	rep, stderr := l.update("--downloadonly")
	if rep.Exit != 0 {
		t.Fatalf("--downloadonly: exit %d\n%s", rep.Exit, stderr)
	}
	if got := l.installed(); !slices.Equal(got, before) {
		t.Errorf("--downloadonly installed something: %v -> %v", before, got)
	}
	if got := l.cachedPackages(); !slices.Equal(got, []string{"hello-1.1-1.noarch.rpm"}) {
		t.Errorf("cached repository after --downloadonly: %v", got)
	}
	vmCache := filepath.Join(l.Root(l.UpdateVM()), "var/lib/PedOS/dom0-updates/var/cache/dnf")
	if _, err := os.Stat(vmCache); err != nil {
		t.Fatalf("the UpdateVM has no metadata cache after a download: %v", err)
	}
	// --clean empties both caches first; the same update is then fetched
	// and verified again from scratch.
	rep, stderr = l.update("--clean", "--downloadonly")
	if rep.Exit != 0 || !strings.Contains(stderr, "Emptying the cached repository") {
		t.Fatalf("--clean: exit %d\n%s", rep.Exit, stderr)
	}
	if got := l.cachedPackages(); !slices.Equal(got, []string{"hello-1.1-1.noarch.rpm"}) {
		t.Errorf("cached repository after --clean --downloadonly: %v", got)
	}
}

func TestReinstall(t *testing.T) {
	l := newLab(t)
	rep, stderr := l.update("-y", "--action=reinstall", "hello")
	if rep.Exit != 0 {
		t.Fatalf("reinstall: exit %d\n%s", rep.Exit, stderr)
	}
	if got := l.cachedPackages(); !slices.Equal(got, []string{"hello-1.0-1.noarch.rpm"}) {
		t.Errorf("cached repository after reinstall: %v", got)
	}
	if rep.DNFExit == nil || *rep.DNFExit != 0 {
		t.Errorf("dnf reinstall did not run or failed: %+v", rep)
	}
	// The record says what was reinstalled: rpm -qa alone shows no change.
	if !slices.Equal(rep.Reinstalled, []string{"hello-1.0-1.noarch"}) || len(rep.Installed) != 0 {
		t.Errorf("reinstall's record: reinstalled %v, installed %v; want hello-1.0-1.noarch reinstalled", rep.Reinstalled, rep.Installed)
	}
}

func TestDowngradeNeedsConsent(t *testing.T) {
	l := newLab(t)
	l.publish("libfoo-2.0-1")
	if rep, stderr := l.update("-y"); rep.Exit != 0 {
		t.Fatalf("update: exit %d\n%s", rep.Exit, stderr)
	}
	before := l.snapshot()
	_, stderr, code := l.run("dom0", "pedos-dom0-update", "-y", "--action=downgrade", "libfoo")
	if code != frontend.ExitUsage || !strings.Contains(stderr, "--allow-downgrade") {
		t.Errorf("downgrade without --allow-downgrade: exit %d, want 2 naming --allow-downgrade\n%s", code, stderr)
	}
	l.assertUnchanged(before)
	rep, stderr := l.update("-y", "--action=downgrade", "--allow-downgrade", "libfoo")
	if rep.Exit != 0 {
		t.Fatalf("downgrade with --allow-downgrade: exit %d\n%s", rep.Exit, stderr)
	}
	if got := l.installed(); !slices.Contains(got, "libfoo-1.0-1") {
		t.Errorf("after the consented downgrade: %v; report %+v\n%s", got, rep, stderr)
	}
}

// A delivery an earlier run left being verified holds the receive lock: the
// next run stops before the UpdateVM downloads anything.
func TestUpdateWhileADeliveryIsVerified(t *testing.T) {
	l := newLab(t)
	l.publish("hello-1.1-1")
	before := l.snapshot()
	l.holdStateLock(dom0.ReceiveLockFile)
	rep, stderr := l.update("-y")
	if want := "pedos-receive-updates is still verifying a delivery"; rep.Exit != frontend.ExitFailure || !strings.Contains(rep.Message, want) ||
		strings.Contains(stderr, "Sending dom0's package database") {
		t.Errorf("update while a delivery holds the receive lock: exit %d, message %q, want 1 and %q, nothing downloaded\n%s", rep.Exit, rep.Message, want, stderr)
	}
	l.assertUnchanged(before)
}

func TestLockContention(t *testing.T) {
	l := newLab(t)
	l.holdStateLock(frontend.UpdateLockFile)
	rep, stderr := l.update("-y")
	if rep.Exit != 1 || !strings.Contains(stderr, "another update is running") {
		t.Errorf("update while locked: exit %d\n%s", rep.Exit, stderr)
	}
}

// The receive service refuses a call policy let through, before reading it
// (here: another delivery holds the receive lock): the update says dom0
// refused the delivery (126), not that the UpdateVM's download failed.
func TestServiceRefusesAfterPolicy(t *testing.T) {
	l := newLab(t)
	l.publish("hello-1.1-1")
	before := l.snapshot()
	// Taken once the session is written: before that, the front end would find it held and
	// not start (TestUpdateWhileADeliveryIsVerified).
	state := filepath.Join(l.Root("dom0"), dom0.StateDir)
	held := make(chan *os.File, 1)
	go func() {
		defer close(held)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(state, dom0.SessionFile)); err == nil {
				break
			}
		}
		f, err := os.OpenFile(filepath.Join(state, dom0.ReceiveLockFile), os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil && unix.Flock(int(f.Fd()), unix.LOCK_EX) == nil {
			held <- f
		}
	}()
	rep, stderr := l.update("-y")
	if f, ok := <-held; ok {
		defer f.Close()
	} else {
		t.Fatal("the receive lock could not be taken once the session was written")
	}
	// The policy allowed the call before the download: the message says so, and names the
	// service as what refused it.
	if want := "dom0 refused the delivery from " + l.UpdateVM() + " (126) before reading it: dom0's qrexec policy lets " + l.UpdateVM() + " call PedOS.ReceiveUpdates"; rep.Exit != frontend.ExitRefused || !strings.Contains(rep.Message, want) || !strings.Contains(rep.Message, "checked before the download), so pedos-receive-updates refused the call") {
		t.Errorf("update while a delivery holds the receive lock: exit %d, message %q, want 126 and %q\n%s", rep.Exit, rep.Message, want, stderr)
	}
	l.assertUnchanged(before)
}

// M2 through dnf: the UpdateVM delivers an update but not the new
// dependency it needs. The withholding check judges installed names only,
// and dom0's dnf (best=False) skips the update and exits 0: the run must
// not report success.
// sendAllBut makes the UpdateVM's qfile-agent leave out the files whose
// names begin with prefix, as a compromised UpdateVM holding them back.
func sendAllBut(t *testing.T, l *testLab, prefix string) { rewriteDelivery(t, l, "*/"+prefix+"*", "") }

// rewriteDelivery puts a script before the UpdateVM's qfile-agent that
// replaces each file argument matching the shell pattern with the words of
// replacement ("" drops it), as a compromised UpdateVM would.
func rewriteDelivery(t *testing.T, l *testLab, pattern, replacement string) {
	t.Helper()
	vm := l.UpdateVM()
	real := l.ProgramPath(vm, "qfile-agent")
	if err := os.Rename(real, real+".real"); err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\n# attacker: rewrite the files sent\n" +
		"for a; do shift; case \"$a\" in " + pattern + ") set -- \"$@\" " + replacement + " ;; *) set -- \"$@\" \"$a\" ;; esac; done\n" +
		"exec " + filepath.Join(lab.ProgramsDir, "qfile-agent.real") + " \"$@\"\n"
	if err := l.ReplaceProgram(vm, "qfile-agent", []byte(wrapper)); err != nil {
		t.Fatal(err)
	}
}

func TestHeldBackDependency(t *testing.T) {
	l := newLab(t)
	l.publish("libbar-1.0-1", "hello-1.1-1 requires=libbar")
	sendAllBut(t, l, "libbar-")
	rep, stderr := l.update("-y")
	if want := "left out 1 verified update(s) of installed packages: hello-1.1-1.noarch"; rep.Exit != frontend.ExitFailure || !strings.Contains(rep.Message, want) {
		t.Errorf("update without hello's new dependency: exit %d, message %q, want exit 1 saying %q\n%s", rep.Exit, rep.Message, want, stderr)
	}
	if got := l.installed(); slices.Contains(got, "hello-1.1-1") {
		t.Errorf("hello-1.1-1 installed without its dependency: %v", got)
	}
}

// A package renamed by its publisher: the repository lists the old name's
// update beside the new name that obsoletes it, dnf in the UpdateVM picks
// the new one, and dom0 takes it as hello's update, not as hello-1.1
// withheld (M2); dnf replaces hello with it. The result says what it
// obsoletes of what is installed (not never-installed).
func TestRenamedPackage(t *testing.T) {
	l := newLab(t)
	l.publish("hello-1.1-1", "hello-ng-2.0-1 obsoletes=hello<2.0 obsoletes=never-installed provides=hello=2.0")
	rep, stderr := l.update("-y")
	if rep.Exit != 0 || rep.Result == nil || !rep.Result.Accepted {
		t.Fatalf("update: %+v\n%s", rep, stderr)
	}
	if want := []string{"hello-ng-2.0-1", "libfoo-1.0-1"}; !slices.Equal(l.installed(), want) {
		t.Errorf("installed after the update: %v, want %v", l.installed(), want)
	}
	if p := rep.Result.Packages; len(p) != 1 || len(p[0].Obsoletes) != 1 || p[0].Obsoletes[0].Name != "hello" || p[0].Obsoletes[0].Version != "2.0" {
		t.Errorf("delivered %+v, want hello-ng obsoleting hello < 2.0", p)
	}
	if f := rep.Result.Findings; !slices.ContainsFunc(f, func(f dom0.Finding) bool { return f.Kind == "replaced" && !f.Error }) {
		t.Errorf("findings %+v, want a replaced notice", f)
	}
}

// The replacement's dependency held back by the UpdateVM: dnf skips the
// package that obsoletes hello and exits 0, which would leave hello-1.0
// and its update withheld; the run fails naming the replacement (M2).
func TestHeldBackReplacement(t *testing.T) {
	l := newLab(t)
	l.publish("libbar-1.0-1", "hello-1.1-1", "hello-ng-2.0-1 obsoletes=hello<2.0 provides=hello=2.0 requires=libbar")
	sendAllBut(t, l, "libbar-")
	rep, stderr := l.update("-y")
	if want := "left out 1 verified update(s) of installed packages: hello-ng-2.0-1.noarch"; rep.Exit != frontend.ExitFailure || !strings.Contains(rep.Message, want) {
		t.Errorf("replacement without its dependency: exit %d, message %q, want exit 1 saying %q\n%s", rep.Exit, rep.Message, want, stderr)
	}
	if got := l.installed(); !slices.Contains(got, "hello-1.0-1") {
		t.Errorf("installed after the failed replacement: %v, want hello-1.0-1 still there", got)
	}
}

// What an earlier download left in the UpdateVM's download directory (a
// send that failed, a crash) is not sent with the next transaction: dom0
// would refuse the batch for it (reference issues 3408, 10716).
func TestStaleDownloadsAreNotSent(t *testing.T) {
	l := newLab(t)
	l.publish("hello-1.1-1")
	packages := filepath.Join(l.Root(l.UpdateVM()), "var/lib/PedOS/dom0-updates/packages")
	if err := os.MkdirAll(packages, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(packages, "libfoo-0.9-1.noarch.rpm"), []byte("left from an earlier run"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, stderr := l.update("-y")
	if rep.Exit != 0 || rep.Result == nil || len(rep.Result.Packages) != 1 || rep.Result.Packages[0].NEVRA != "hello-1.1-1.noarch" {
		t.Fatalf("update with a stale download beside it: %+v\n%s", rep, stderr)
	}
}

// A package whose Obsoletes stop below the newest listed build cannot
// stand for that build (M2): an UpdateVM that sends hello-gone (Obsoletes:
// hello < 1.1) instead of hello-1.2 is refused as withholding hello-1.2,
// where dnf would have replaced hello-1.0 with hello-gone and exited 0.
func TestObsoletingBelowTheUpdateIsWithheld(t *testing.T) {
	l := newLab(t)
	l.publish("hello-1.2-1", "hello-gone-1.0-1 obsoletes=hello<1.1")
	rpm, err := os.ReadFile(filepath.Join(l.Dir, "mirror/www/repo/current/packages/hello-gone-1.0-1.noarch.rpm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Root(l.UpdateVM()), "tmp/hello-gone-1.0-1.noarch.rpm"), rpm, 0o644); err != nil {
		t.Fatal(err)
	}
	rewriteDelivery(t, l, "*/hello-1.2-1*", "/tmp/hello-gone-1.0-1.noarch.rpm")
	before := l.snapshot()
	rep, stderr := l.update("-y")
	if rep.Exit != frontend.ExitFailure || !strings.Contains(rep.Message, "(withheld") || !strings.Contains(rep.Message, "hello-1.2-1") {
		t.Errorf("hello-gone instead of hello-1.2: exit %d, message %q; want refused as withholding hello-1.2\n%s", rep.Exit, rep.Message, stderr)
	}
	l.assertUnchanged(before)
}

func TestUpdateVMNotRunning(t *testing.T) {
	l := newLab(t)
	setUpdateVM(t, l, "sys-absent")
	before := l.snapshot()
	rep, stderr := l.update("-y")
	if rep.Exit != frontend.ExitQrexecFailure || !strings.Contains(stderr, "sys-absent") {
		t.Errorf("UpdateVM absent: exit %d, want 125 naming it\n%s", rep.Exit, stderr)
	}
	l.assertUnchanged(before)
}

func TestUpdateVMFailing(t *testing.T) {
	l := newLab(t)
	l.publish("hello-1.1-1")
	if err := l.ReplaceProgram(l.UpdateVM(), "pedos-download-dom0-updates", []byte("#!/bin/sh\necho broken >&2\nexit 3\n")); err != nil {
		t.Fatal(err)
	}
	before := l.snapshot()
	rep, stderr := l.update("-y")
	if rep.Exit != 1 || !strings.Contains(stderr, "exit 3") || !strings.Contains(stderr, l.UpdateVM()) {
		t.Errorf("failing UpdateVM: exit %d, want 1 naming the VM and its exit\n%s", rep.Exit, stderr)
	}
	l.assertUnchanged(before)
}

// P11 in the lab: one tampered package refuses the whole batch.
func TestBadPackageRefusesBatch(t *testing.T) {
	l := newLab(t)
	l.publish("libfoo-2.0-1", "hello-1.1-1 requires=libfoo>=2.0")
	tamperWith(t, l, "hello-*.rpm")
	before := l.snapshot()
	rep, stderr := l.update("-y")
	if rep.Exit != 1 || rep.Result == nil || rep.Result.Accepted {
		t.Fatalf("tampered batch: exit %d, result %+v\n%s", rep.Exit, rep.Result, stderr)
	}
	var reasons []string
	for _, p := range rep.Result.Packages {
		if !p.OK {
			reasons = append(reasons, p.File+": "+p.Rejected)
		}
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], "hello-1.1-1.noarch.rpm: payload digest does not match") {
		t.Errorf("rejections: %q", reasons)
	}
	if !strings.Contains(stderr, "payload digest does not match") {
		t.Errorf("the front end does not print the reason:\n%s", stderr)
	}
	l.assertUnchanged(before)
}

// C1 and C2: the service refuses, before reading, a caller that is not the
// UpdateVM and a delivery outside a session.
func TestServiceRefusesOutsideSession(t *testing.T) {
	l := newLab(t)
	before := l.snapshot()
	vm := l.UpdateVM()
	// C2: the UpdateVM calls with an id dom0 never gave out.
	_, stderr, code := l.run(vm, "sh", "-c",
		"mkdir -p /tmp/x && echo x > /tmp/x/evil-1-1.noarch.rpm && qrexec-client-vm dom0 PedOS.ReceiveUpdates+0123456789abcdef0123456789abcdef qfile-agent /tmp/x/evil-1-1.noarch.rpm")
	if code == 0 {
		t.Errorf("unsolicited delivery succeeded:\n%s", stderr)
	}
	// C1: dom0 is told the UpdateVM is another VM; the real one is now a
	// stranger, even though policy still lets it call.
	setUpdateVM(t, l, "sys-net")
	_, stderr, code = l.run("dom0", "sh", "-c",
		"echo junk | QREXEC_REMOTE_DOMAIN="+vm+" pedos-receive-updates 0123456789abcdef0123456789abcdef")
	if code != 126 || !strings.Contains(stderr, "only the UpdateVM sys-net may deliver") {
		t.Errorf("service called by %s: exit %d, want 126 naming the UpdateVM\n%s", vm, code, stderr)
	}
	l.assertUnchanged(before, strings.TrimPrefix(dom0.ConfigPath, "/")) // setUpdateVM's edit
	if _, err := os.Stat(filepath.Join(l.Root("dom0"), dom0.StagingDir)); err == nil {
		entries, _ := os.ReadDir(filepath.Join(l.Root("dom0"), dom0.StagingDir))
		if len(entries) != 0 {
			t.Errorf("a refused call left staging directories: %v", entries)
		}
	}
}

// setUpdateVM rewrites dom0's updates.conf to name another UpdateVM.
func setUpdateVM(t *testing.T, l *testLab, name string) {
	t.Helper()
	path := filepath.Join(l.Root("dom0"), dom0.ConfigPath)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "updatevm") {
			line = "updatevm = " + name
		}
		out = append(out, line)
	}
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tamperWith makes the UpdateVM's qfile-agent flip a byte near the end of
// every package whose name matches glob before sending it.
func tamperWith(t *testing.T, l *testLab, glob string) {
	t.Helper()
	vm := l.UpdateVM()
	real := l.ProgramPath(vm, "qfile-agent")
	if err := os.Rename(real, real+".real"); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`#!/bin/sh
for f in "$@"; do
	case "$(basename "$f")" in %s)
		size=$(stat -c %%s "$f")
		printf '\377' | dd of="$f" bs=1 seek=$((size - 16)) conv=notrunc status=none ;;
	esac
done
exec /usr/lib/pedos/bin/qfile-agent.real "$@"
`, glob)
	if err := l.ReplaceProgram(vm, "qfile-agent", []byte(script)); err != nil {
		t.Fatal(err)
	}
}

// TestDom0DNFRefreshesCachedRepo: dom0's dnf must read the cached
// repository as just published. With metadata_expire=0 alone, dnf kept its
// cache when it was not yet a whole second old, so an update that followed
// the previous one within a second verified the new packages and then
// installed nothing (exit 0). Dating the cache an hour ahead makes that
// window certain.
func TestDom0DNFRefreshesCachedRepo(t *testing.T) {
	l := newLab(t)
	l.publish("libfoo-2.0-1")
	if rep, stderr := l.update("-y"); rep.Exit != 0 {
		t.Fatalf("first update: exit %d\n%s", rep.Exit, stderr)
	}
	cache := filepath.Join(l.Root("dom0"), "var/cache/dnf")
	ahead := time.Now().Add(time.Hour)
	n := 0
	err := filepath.WalkDir(cache, func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			n++
			err = os.Chtimes(path, ahead, ahead)
		}
		return err
	})
	if err != nil || n < 2 {
		t.Fatalf("dating dom0's dnf cache %s ahead: %d entries, %v", cache, n, err)
	}
	l.publish("hello-1.1-1")
	if rep, stderr := l.update("-y"); rep.Exit != 0 || !slices.Contains(rep.Installed, "hello-1.1-1.noarch") {
		t.Errorf("second update: exit %d, installed %v, want hello-1.1-1.noarch\n%s", rep.Exit, rep.Installed, stderr)
	}
	if got := l.installed(); !slices.Contains(got, "hello-1.1-1") {
		t.Errorf("installed after the second update: %v, want hello-1.1-1", got)
	}
}

// TestUpdateVMCacheAfterRepoChange: the UpdateVM forwards the metadata of
// the repository as it is configured now, whatever its dnf cache still
// holds from another baseurl. dnf keeps a cache directory per repository
// and URL and leaves repomd.xml's time alone when it has not changed, so
// after the baseurl was changed (here by an attacker, as in attack row M3)
// and changed back, the other URL's older metadata looked the newest and
// every later update was refused as a rollback.
func TestUpdateVMCacheAfterRepoChange(t *testing.T) {
	l := newLab(t)
	if _, err := l.Publish(lab.PublishOptions{Specs: []string{"hello-1.1-1"}, Snapshot: "old"}); err != nil {
		t.Fatal(err)
	}
	l.publish("hello-1.2-1")
	if rep, stderr := l.update("-y"); rep.Exit != 0 {
		t.Fatalf("first update: exit %d\n%s", rep.Exit, stderr)
	}
	vm, program := l.UpdateVM(), "pedos-download-dom0-updates"
	original, err := os.ReadFile(l.ProgramPath(vm, program))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.ProgramPath(vm, program+".real"), original, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := `#!/bin/sh
/usr/lib/pedos/bin/pedos-download-dom0-updates.real "$@" || exit
sed -i 's|/repo/current/|/repo/snapshots/old/|' /var/lib/PedOS/dom0-updates/etc/yum.repos.d/*.repo
`
	if err := l.ReplaceProgram(vm, program, []byte(wrapper)); err != nil {
		t.Fatal(err)
	}
	if rep, stderr := l.update("-y"); rep.Exit != 1 || !strings.Contains(stderr, "rollback") {
		t.Fatalf("update with the repository pointed at an older snapshot: exit %d, want 1 naming a rollback\n%s", rep.Exit, stderr)
	}
	if err := l.ReplaceProgram(vm, program, original); err != nil {
		t.Fatal(err)
	}
	if rep, stderr := l.update("-y"); rep.Exit != 0 {
		t.Errorf("honest update after the repository was pointed back: exit %d, want 0\n%s", rep.Exit, stderr)
	}
}

// TestAssumeNo: --assumeno shows dom0's transaction and changes nothing.
// It goes to dom0's dnf only: given to the UpdateVM's dnf too, that one
// answered its own download no and the run ended there.
func TestAssumeNo(t *testing.T) {
	l := newLab(t)
	l.publish("hello-1.1-1")
	rep, stderr := l.update("--assumeno")
	if rep.Exit != 1 || !strings.Contains(stderr, "under --assumeno: it changed nothing") || !strings.Contains(stderr, "hello") {
		t.Errorf("--assumeno: exit %d, want 1 after showing dom0's transaction\n%s", rep.Exit, stderr)
	}
	if got := l.installed(); !slices.Contains(got, "hello-1.0-1") {
		t.Errorf("installed after --assumeno: %v, want hello-1.0-1 still", got)
	}
	// A removal downloads nothing: its message claims no verified packages.
	rep, stderr = l.update("--assumeno", "--action=remove", "hello")
	if rep.Exit != 1 || !strings.Contains(stderr, "under --assumeno: it changed nothing") || strings.Contains(stderr, "cached repository") {
		t.Errorf("--assumeno --action=remove: exit %d, want 1 without a word of verified packages\n%s", rep.Exit, stderr)
	}
	if got := l.installed(); !slices.Contains(got, "hello-1.0-1") {
		t.Errorf("installed after --assumeno --action=remove: %v, want hello-1.0-1 still", got)
	}
	if rep, stderr := l.update("-y"); rep.Exit != 0 || !slices.Contains(rep.Installed, "hello-1.1-1.noarch") {
		t.Errorf("update after --assumeno: exit %d, installed %v\n%s", rep.Exit, rep.Installed, stderr)
	}
}
