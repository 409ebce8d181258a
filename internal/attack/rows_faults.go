package attack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/lab"
)

// The fault rows share one lab. Their deliveries are valid: each fault
// must leave dom0 with the old state or the new one, complete, and the
// next update must work.

// repoState is dom0's cached repository and freshness state, to tell
// "old" from "new" after a fault.
type repoState struct{ repo, freshness string }

func (e *Env) repoState() (repoState, error) {
	repo, freshness, err := repoDigests(e.Lab.Root(lab.Dom0))
	return repoState{repo, freshness}, err
}

// freshDelivery publishes a new package and makes the UpdateVM deliver it
// with the current metadata (what an honest UpdateVM sends for
// --downloadonly, without running dnf, so that a trial takes a second).
func (e *Env) freshDelivery() (string, error) {
	name := "hello-" + e.nextVersion() + "-1"
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{name}}); err != nil {
		return "", err
	}
	return name + ".noarch.rpm", e.deliver(e.currentDelivery(name + ".noarch.rpm"))
}

// cachedPackages lists the package files of dom0's cached repository.
func (e *Env) cachedPackages() []string {
	entries, _ := os.ReadDir(e.dom0Path(filepath.Join(dom0.CachedRepoDir, "rpm")))
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}

// oldOrNew checks that the cached repository is the old one or the
// complete new one holding want, and says which.
func (e *Env) oldOrNew(old repoState, want string) (string, error) {
	now, err := e.repoState()
	if err != nil {
		return "", err
	}
	switch {
	case now.repo == old.repo:
		return "old", nil
	case slices.Equal(e.cachedPackages(), []string{want}):
		if _, err := os.Stat(e.dom0Path(filepath.Join(dom0.CachedRepoDir, "repodata", "repomd.xml"))); err != nil {
			return "", fmt.Errorf("new packages published without metadata: %v", err)
		}
		return "new", nil
	}
	return "", fmt.Errorf("the cached repository is neither the old nor the new one: %v", e.cachedPackages())
}

// recovered runs the pending delivery again without the fault: it must be
// accepted, leave nothing behind, and the cached repository must be the
// new one.
func (e *Env) recovered(want string) error {
	if _, err := e.accepted("--downloadonly"); err != nil {
		return fmt.Errorf("the update after the fault: %w", err)
	}
	if got := e.cachedPackages(); !slices.Equal(got, []string{want}) {
		return fmt.Errorf("after recovery the cached repository holds %v, want %s", got, want)
	}
	return e.noBuildLeft()
}

// noBuildLeft checks that no build directory is left beside the cached
// repository (a killed run leaves one; the next run removes it).
func (e *Env) noBuildLeft() error {
	builds, _ := filepath.Glob(e.dom0Path(filepath.Join(filepath.Dir(dom0.CachedRepoDir), ".updates-*")))
	if len(builds) > 0 {
		return fmt.Errorf("build directories left beside the cached repository: %v", builds)
	}
	return nil
}

// tmpClean checks, at the end of a row whose runs were killed, that the
// runs that followed removed what the killed ones left in dom0's /tmp.
func (e *Env) tmpClean(passed string) error {
	left := e.newInTmp()
	if len(left) == 0 {
		return nil
	}
	for i, p := range left {
		left[i] = "/" + strings.TrimPrefix(p, e.Lab.Root(lab.Dom0)+"/")
	}
	return fmt.Errorf("%s; but the killed runs left %d temporary directories in dom0's /tmp that no later run removes: %s",
		passed, len(left), clip(strings.Join(left, " "), 120))
}

// newInTmp lists what dom0's /tmp holds that it did not when the row began.
func (e *Env) newInTmp() []string {
	now, _ := filepath.Glob(e.dom0Path("tmp/*"))
	var added []string
	for _, p := range now {
		if !slices.Contains(e.tmpAtStart, p) {
			added = append(added, p)
		}
	}
	return added
}

// receiveProcess matches the receive service's command line in dom0 (the
// brackets keep the matching shell itself out).
const receiveProcess = "[p]edos-receive-updates|[P]edOS.ReceiveUpdates"

var faultRows = []Row{
	{ID: "F1", Group: "faults", Attack: "the receive service killed with SIGKILL at random points, many times", run: runF1},
	{ID: "F2", Group: "faults", Attack: "createrepo_c fails", run: runF2},
	{ID: "F3", Group: "faults", Attack: "two pedos-dom0-update runs at once", run: runF3},
	{ID: "F4", Group: "faults", Attack: "power cut during the atomic publication (SIGKILL between its steps)", run: runF4},
	{ID: "F5", Group: "faults", Attack: "dnf fails during the installation (a %pre scriptlet exits 1; a %post one too)", run: runF5},
}

func runF1(e *Env) (string, error) {
	trials := 20
	if e.form == Long {
		trials = 100
	}
	want, err := e.freshDelivery()
	if err != nil {
		return "", err
	}
	// One undisturbed run measures how long a receive takes, so that the
	// kills spread over all of it (unpack, verification, publication) and a
	// little beyond, where they find the service gone.
	u, err := e.accepted("--downloadonly")
	if err != nil {
		return "", fmt.Errorf("the undisturbed delivery: %w", err)
	}
	span := u.Report.Result.Finished.Sub(u.Report.Result.Started) * 3 / 2
	killed, outcomes := 0, map[string]int{}
	for trial := range trials {
		if want, err = e.freshDelivery(); err != nil {
			return "", err
		}
		before, err := e.capture()
		if err != nil {
			return "", err
		}
		old := repoState{before.CachedRepo, before.Freshness}
		delay := time.Duration(rand.Int64N(int64(span)))
		killer := make(chan string, 1)
		go func() {
			out, _, _, _ := e.exec(lab.Dom0, nil, "sh", "-c", fmt.Sprintf(
				"for i in $(seq 1 3000); do pid=$(pgrep -o -f '%s') && break; sleep 0.005; done; sleep %.3f; kill -KILL $pid 2>/dev/null && echo killed",
				receiveProcess, delay.Seconds()))
			killer <- out
		}()
		u, err := e.update("--downloadonly")
		if err != nil {
			return "", err
		}
		if strings.Contains(<-killer, "killed") {
			killed++
		}
		which, err := e.oldOrNew(old, want)
		if err != nil {
			return "", fmt.Errorf("trial %d (kill after %s): %w", trial, delay.Round(time.Millisecond), err)
		}
		outcomes[which]++
		if u.Exit != 0 && which == "new" && u.Report.Result != nil && !u.Report.Result.Accepted {
			return "", fmt.Errorf("trial %d: the delivery was refused but the new repository is published", trial)
		}
		if err := e.consistentAfterKill(before, which); err != nil {
			return "", fmt.Errorf("trial %d (kill after %s): %w", trial, delay.Round(time.Millisecond), err)
		}
		if left, err := e.leftInDom0(); err != nil || len(left) > 0 {
			return "", fmt.Errorf("trial %d: processes left in dom0: %v %v", trial, left, err)
		}
	}
	e.notes = append(e.notes, fmt.Sprintf("%d trials, %d killed the service (delays up to %s); the cached repository was the old one %d times, the complete new one %d times",
		trials, killed, span.Round(time.Millisecond), outcomes["old"], outcomes["new"]))
	if killed == 0 {
		return "", fmt.Errorf("no trial killed the service: nothing was tested")
	}
	if err := e.recovered(want); err != nil {
		return "", err
	}
	passed := fmt.Sprintf("%d/%d trials killed the receive; dom0 always had the old or the complete new repository, nothing installed, no process left; the next update works", killed, trials)
	return passed, e.tmpClean(passed)
}

// consistentAfterKill checks dom0 after a killed delivery: nothing
// installed, the rpm database as it was, and the cached repository and
// freshness state as they were ("old") or both replaced ("new"; the state
// may still be old, see runF4). Leftovers of the killed run below
// /var/lib/PedOS and /tmp are allowed here; the next run must remove them
// (recovered).
func (e *Env) consistentAfterKill(before Dom0State, which string) error {
	after, err := e.capture()
	if err != nil {
		return err
	}
	expect := before
	if which == "new" {
		expect.CachedRepo, expect.Freshness = after.CachedRepo, after.Freshness
	}
	if diffs := expect.Unchanged(after, "var/lib/PedOS", "tmp"); len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

func runF2(e *Env) (string, error) {
	want, err := e.freshDelivery()
	if err != nil {
		return "", err
	}
	failing := "#!/bin/sh\necho 'createrepo_c: injected failure (F2)' >&2\nexit 1\n"
	if err := e.addDom0File("root/failing-createrepo_c", []byte(failing)); err != nil {
		return "", err
	}
	if err := os.Chmod(e.dom0Path("root/failing-createrepo_c"), 0o755); err != nil {
		return "", err
	}
	// dom0's tools run with a fixed PATH, so the fault replaces the tool
	// itself, in dom0's own mount namespace only.
	if _, err := e.mustExec(lab.Dom0, "mount", "--bind", "/root/failing-createrepo_c", "/usr/bin/createrepo_c"); err != nil {
		return "", err
	}
	mounted := true
	unmount := func() error {
		if !mounted {
			return nil
		}
		mounted = false
		_, err := e.mustExec(lab.Dom0, "umount", "/usr/bin/createrepo_c")
		return err
	}
	e.undo = append(e.undo, unmount)
	u, err := e.refused(attempt{label: "createrepo_c exits 1", args: []string{"--downloadonly"}, want: []string{"createrepo_c", "injected failure"}})
	if err != nil {
		return "", err
	}
	if err := unmount(); err != nil {
		return "", err
	}
	if err := e.recovered(want); err != nil {
		return "", err
	}
	return "refused (" + clip(u.Report.Result.Error, 90) + "), dom0 unchanged, no build directory left; with createrepo_c back the same delivery is published", nil
}

func runF3(e *Env) (string, error) {
	want, err := e.freshDelivery()
	if err != nil {
		return "", err
	}
	// The first run's UpdateVM takes two seconds before it delivers.
	slow := strings.Replace(filesSender, "exec find", "sleep 2\nexec find", 1)
	if err := e.writeVM(attackDir+"/sender", []byte(slow), 0o755); err != nil {
		return "", err
	}
	first := make(chan Update, 1)
	firstErr := make(chan error, 1)
	go func() {
		u, err := e.update("--downloadonly")
		first <- u
		firstErr <- err
	}()
	if err := waitFlocked(e.dom0Path(filepath.Join(dom0.StateDir, frontend.UpdateLockFile)), 30*time.Second); err != nil {
		return "", fmt.Errorf("the first run: %w", err)
	}
	second, err := e.update("--downloadonly")
	if err != nil {
		return "", err
	}
	u, err := <-first, <-firstErr
	if err != nil {
		return "", err
	}
	if second.Exit != 1 || !strings.Contains(second.Reasons(), "another update is running") {
		return "", fmt.Errorf("the second run: %s", second.summary())
	}
	if u.Exit != 0 {
		return "", fmt.Errorf("the first run failed: %s", u.summary())
	}
	if got := e.cachedPackages(); !slices.Equal(got, []string{want}) {
		return "", fmt.Errorf("cached repository after both runs: %v, want %s", got, want)
	}
	return "the second run stops at once (exit 1: " + clip(second.Report.Message, 70) + "); the first completes and publishes", nil
}

// runF4 kills the receive service at chosen steps of the publication with
// strace's fault injection (signal=KILL on the syscall that would do the
// step): before the cached repository is exchanged, before the freshness
// state is committed, before the result is written.
func runF4(e *Env) (string, error) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		return "", skip("strace is not installed (apt-get install strace): F4 injects its kills with it")
	}
	service := e.dom0Path("etc/pedos-rpc/PedOS.ReceiveUpdates")
	link, err := os.Readlink(service)
	if err != nil {
		return "", err
	}
	e.undo = append(e.undo, func() error {
		if err := os.Remove(service); err != nil {
			return err
		}
		return os.Symlink(link, service)
	})
	steps := []struct {
		label, path string
		want        string // what dom0 must then have
		state       string // the freshness state then
	}{
		{"before the cached repository is exchanged", dom0.CachedRepoDir, "old", "old"},
		{"before the freshness state is committed", filepath.Join(dom0.StateDir, "freshness.json"), "new", "old"},
		{"before the result is written", filepath.Join(dom0.StateDir, "result.json"), "new", "new"},
	}
	var seen []string
	for _, step := range steps {
		want, err := e.freshDelivery()
		if err != nil {
			return "", err
		}
		before, err := e.repoState()
		if err != nil {
			return "", err
		}
		// A service file that is not executable names the program to run
		// (docs/qrexec-protocol.md).
		line := fmt.Sprintf("%s -f -qq -o /dev/null -P %s -e trace=rename,renameat,renameat2 -e inject=rename,renameat,renameat2:signal=KILL %s\n",
			strace, step.path, link)
		if err := os.Remove(service); err != nil {
			return "", err
		}
		if err := os.WriteFile(service, []byte(line), 0o644); err != nil {
			return "", err
		}
		u, err := e.update("--downloadonly")
		if err != nil {
			return "", err
		}
		if u.Exit == 0 {
			return "", fmt.Errorf("%s: the delivery succeeded: the kill did not happen", step.label)
		}
		which, err := e.oldOrNew(before, want)
		if err != nil {
			return "", fmt.Errorf("%s: %w", step.label, err)
		}
		after, err := e.repoState()
		if err != nil {
			return "", err
		}
		state := "new"
		if after.freshness == before.freshness {
			state = "old"
		}
		if which != step.want || state != step.state {
			return "", fmt.Errorf("%s: cached repository %s and freshness state %s, want %s and %s", step.label, which, state, step.want, step.state)
		}
		if left, err := e.leftInDom0(); err != nil || len(left) > 0 {
			return "", fmt.Errorf("%s: processes left in dom0: %v %v", step.label, left, err)
		}
		if err := os.Remove(service); err != nil {
			return "", err
		}
		if err := os.Symlink(link, service); err != nil {
			return "", err
		}
		if err := e.recovered(want); err != nil {
			return "", fmt.Errorf("%s: %w", step.label, err)
		}
		seen = append(seen, fmt.Sprintf("%s: repository %s, state %s", step.label, which, state))
	}
	passed := "killed " + strings.Join(seen, "; ") + "; each time the next update publishes and commits"
	return passed, e.tmpClean(passed)
}

func runF5(e *Env) (string, error) {
	var seen []string
	for _, scriptlet := range []string{"pre", "post"} {
		if err := e.converge(); err != nil {
			return "", err
		}
		name := "hello-" + e.nextVersion() + "-1"
		if _, err := e.publishPending(lab.PublishOptions{Specs: []string{name + " " + scriptlet + "=fail"}}); err != nil {
			return "", err
		}
		u, err := e.update("-y")
		if err != nil {
			return "", err
		}
		if u.Report.Result == nil || !u.Report.Result.Accepted {
			return "", fmt.Errorf("%%%s=fail: the delivery itself was refused: %s", scriptlet, u.summary())
		}
		if _, err := e.mustExec(lab.Dom0, "rpmdb", "--verifydb"); err != nil {
			return "", fmt.Errorf("%%%s=fail: dom0's rpm database: %w", scriptlet, err)
		}
		if got := e.cachedPackages(); !slices.Contains(got, name+".noarch.rpm") {
			return "", fmt.Errorf("%%%s=fail: the cached repository holds %v", scriptlet, got)
		}
		// The next run works: the publisher fixes the package.
		fixed := "hello-" + e.nextVersion() + "-1"
		if _, err := e.publishPending(lab.PublishOptions{Specs: []string{fixed}}); err != nil {
			return "", err
		}
		if err := e.converge(); err != nil {
			return "", fmt.Errorf("%%%s=fail, then a fixed package: %w", scriptlet, err)
		}
		installed, err := e.installed()
		if err != nil {
			return "", err
		}
		if !slices.Contains(installed, fixed) {
			return "", fmt.Errorf("%%%s=fail: the fixed %s is not installed: %v", scriptlet, fixed, installed)
		}
		dnfExit := -1
		if u.Report.DNFExit != nil {
			dnfExit = *u.Report.DNFExit
		}
		seen = append(seen, fmt.Sprintf("%%%s=fail: exit %d (dnf %d)", scriptlet, u.Exit, dnfExit))
		if scriptlet == "post" && dnfExit == 0 {
			e.notes = append(e.notes, "a failing %post is not fatal to dnf: the package is installed, dnf says so in a warning and exits 0")
		}
	}
	return strings.Join(seen, "; ") + "; the delivery stays published, the rpm database verifies, and the next update installs the fixed package", nil
}

// waitFlocked waits until some process holds a flock(2) on the file at path,
// as /proc/locks lists it (by inode); taking the lock to find out would
// race with its holder.
func waitFlocked(path string, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			continue // not created yet
		}
		locks, err := os.ReadFile("/proc/locks")
		if err != nil {
			return err
		}
		file := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
		for line := range strings.Lines(string(locks)) {
			// "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
			if f := strings.Fields(line); len(f) >= 6 && f[1] == "FLOCK" && f[5] == file {
				return nil
			}
		}
	}
	return fmt.Errorf("nobody held %s within %v", path, timeout)
}

// machineArch is this machine's architecture as uname names it, which dom0's
// receive service takes for its own (x86_64, aarch64).
func machineArch() string {
	var uname unix.Utsname
	if err := unix.Uname(&uname); err != nil {
		return "x86_64"
	}
	return unix.ByteSliceToString(uname.Machine[:])
}
