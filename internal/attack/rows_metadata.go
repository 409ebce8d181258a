package attack

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"pedos.dev/updates/internal/lab"
)

// The metadata rows (M1–M9, issue 7) share one lab and run in any order:
// each brings dom0 up to date first when an earlier row left updates
// pending (converge), then publishes what it needs.

// nextVersion is a version newer than any this lab published before.
func (e *Env) nextVersion() string {
	e.seq++
	return fmt.Sprintf("2.%d", e.seq)
}

// publishPending publishes packages that are upgrades for dom0.
func (e *Env) publishPending(opts lab.PublishOptions) (lab.Revision, error) {
	e.pending = true
	return e.publish(opts)
}

// converge runs an honest update when an earlier row left updates pending,
// so that dom0 has installed everything and accepted the newest metadata.
func (e *Env) converge() error {
	if !e.pending {
		return nil
	}
	u, err := e.honest("-y")
	if err != nil {
		return err
	}
	// Updates were published, so an honest run that installs nothing has
	// lost them (as dom0's dnf did when it read a stale cache).
	if len(u.Report.Installed) == 0 {
		return fmt.Errorf("an honest update installed nothing although updates were published: %s", u.summary())
	}
	e.pending = false
	return nil
}

// honest runs an update with the UpdateVM's real program, which must
// succeed.
func (e *Env) honest(args ...string) (Update, error) {
	real := e.Lab.ProgramPath(e.Lab.UpdateVM(), "pedos-download-dom0-updates")
	if err := writeFileAtomic(real, e.originals[real], 0o755); err != nil {
		return Update{}, err
	}
	return e.accepted(args...)
}

// wrapDownloader puts script in place of the UpdateVM's program; the real
// program stays beside it as pedos-download-dom0-updates.real, where the
// attacker's script calls it.
func (e *Env) wrapDownloader(script string) error {
	vm := e.Lab.UpdateVM()
	program := e.Lab.ProgramPath(vm, "pedos-download-dom0-updates")
	real := program + ".real"
	if err := os.WriteFile(real, e.originals[program], 0o755); err != nil {
		return err
	}
	e.undo = append(e.undo, func() error { return os.Remove(real) })
	return e.Lab.ReplaceProgram(vm, "pedos-download-dom0-updates", []byte(script))
}

// metadataRefused runs a metadata attempt: exit 1, exactly the finding
// kinds given, dom0 unchanged.
func (e *Env) metadataRefused(a attempt) (Update, error) {
	u, err := e.refused(a)
	if err != nil {
		return u, err
	}
	got := slices.Compact(slices.Sorted(slices.Values(u.Kinds())))
	want := slices.Sorted(slices.Values(a.kinds))
	if !slices.Equal(got, want) {
		return u, a.failf("findings %v, want exactly %v: %s", got, want, u.summary())
	}
	return u, nil
}

// trustLabKey puts the public half of a lab key (made by a publish) in
// dom0's package keyring for the row, and returns its path in dom0.
func (e *Env) trustLabKey(name string) (string, error) {
	pub, err := os.ReadFile(filepath.Join(e.Lab.Dir, "keys", name+".pub.asc"))
	if err != nil {
		return "", err
	}
	keyFile := keyringDir + "/RPM-GPG-KEY-" + name
	return keyFile, e.addDom0File(keyFile, pub)
}

// refusedWith runs a metadata attempt and says what dom0 found.
func (e *Env) refusedWith(a attempt) (string, error) {
	u, err := e.metadataRefused(a)
	if err != nil {
		return "", err
	}
	return "refused (exit 1): " + findingFor(u, a.kinds[0]), nil
}

// findingFor is the message of the first finding of kind.
func findingFor(u Update, kind string) string {
	if u.Report.Result != nil {
		for _, f := range u.Report.Result.Findings {
			if f.Kind == kind {
				return f.Message
			}
		}
	}
	return ""
}

var metadataRows = []Row{
	{ID: "H1", Group: "metadata", Attack: "none: the honest path (control row)", run: func(e *Env) (string, error) {
		_, err := e.runHonest()
		return "an honest update installs the new version and reports the signed metadata fresh, verified by the pinned key", err
	}},
	{ID: "M1", Group: "metadata", Attack: "freeze: the UpdateVM reports no updates although signed metadata lists newer versions", run: runM1},
	{ID: "M2", Group: "metadata", Attack: "withholding: the UpdateVM passes --exclude=libfoo to dnf and delivers the rest; then delivers an update (noarch to the machine's arch) without the library it newly requires", run: runM2},
	{ID: "M3", Group: "metadata", Attack: "rollback: the UpdateVM points its repository at an older snapshot after dom0's sync", run: runM3},
	{ID: "M4", Group: "metadata", Attack: "replay: an older signed build, newer than installed but not the newest; one of another architecture", run: runM4},
	{ID: "M5", Group: "metadata", Attack: "mix-and-match: packages of one snapshot with the metadata of another", run: runM5},
	{ID: "M6", Group: "metadata", Attack: "extraneous: a validly signed package nobody asked for, in no signed metadata", run: runM6},
	{ID: "M7", Group: "metadata", Attack: "metadata signed by a key trusted for packages but not pinned for the repository", run: runM7},
	{ID: "M8", Group: "metadata", Attack: "downgrade: an older libfoo slipped in as a dependency, without --allow-downgrade", run: runM8},
	{ID: "M9", Group: "m9", Attack: "stale metadata judged against the time floor, dom0's clock 30 days behind", run: runM9},
}

// runHonest publishes a new hello and updates honestly: accepted, fresh.
func (e *Env) runHonest() (Update, error) {
	if err := e.converge(); err != nil {
		return Update{}, err
	}
	v := e.nextVersion()
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{"hello-" + v + "-1"}}); err != nil {
		return Update{}, err
	}
	u, err := e.honest("-y")
	if err != nil {
		return u, err
	}
	e.pending = false
	installed, err := e.installed()
	if err != nil {
		return u, err
	}
	if !slices.Contains(installed, "hello-"+v+"-1") {
		return u, fmt.Errorf("hello-%s-1 not installed: %v", v, installed)
	}
	r := u.Report.Result
	if r == nil || len(r.Freshness) != 1 || r.Freshness[0].Status != "fresh" || r.Freshness[0].Key == "" {
		return u, fmt.Errorf("freshness not reported fresh with a key: %+v", r)
	}
	if !strings.Contains(u.Stderr, "freshness: repo "+labRepo+": fresh") {
		return u, fmt.Errorf("the person is not told the metadata is fresh:\n%s", firstLines(u.Stderr, 10))
	}
	return u, nil
}

func runM1(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	// withheld publishes hello's next version (with extra spec words) and
	// delivers the current metadata without it.
	withheld := func(a attempt, words string) (string, error) {
		next := "hello-" + e.nextVersion() + "-1"
		if _, err := e.publishPending(lab.PublishOptions{Specs: []string{next + words}}); err != nil {
			return "", err
		}
		if err := e.deliver(e.metadataFrom("current")); err != nil {
			return "", err
		}
		a.kinds, a.want = []string{"withheld"}, []string{next}
		return e.refusedWith(a)
	}
	frozen, err := withheld(attempt{label: "current metadata, no packages"}, "")
	if err != nil {
		return "", err
	}
	// The same for an upgrade the user names by a provide of the installed
	// package: dom0 checks the installed providers too.
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{"hello-" + e.nextVersion() + "-1 provides=greeting"}}); err != nil {
		return "", err
	}
	if err := e.converge(); err != nil {
		return "", err
	}
	byProvide, err := withheld(attempt{label: "--action=upgrade greeting (a provide of hello), current metadata, no packages",
		args: []string{"-y", "--action=upgrade", "greeting"}}, " provides=greeting")
	if err != nil {
		return "", err
	}
	// upgrade-to is dnf's upgrade under another name: the same promise.
	if err := e.converge(); err != nil {
		return "", err
	}
	upgradeTo, err := withheld(attempt{label: "--action=upgrade-to hello, current metadata, no packages",
		args: []string{"-y", "--action=upgrade-to", "hello"}}, "")
	return frozen + "; named by a provide: " + byProvide + "; upgrade-to: " + upgradeTo, err
}

func runM2(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	v := e.nextVersion()
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{"libfoo-" + v + "-1", "hello-" + v + "-1"}}); err != nil {
		return "", err
	}
	if err := e.wrapDownloader(`#!/bin/sh
# attacker: the real program, but dnf leaves libfoo out
case " $* " in *" --sync "*) exec /usr/lib/pedos/bin/pedos-download-dom0-updates.real "$@" ;; esac
exec /usr/lib/pedos/bin/pedos-download-dom0-updates.real --exclude=libfoo "$@"
`); err != nil {
		return "", err
	}
	excluded, err := e.refusedWith(attempt{label: "dnf --exclude=libfoo in the UpdateVM", kinds: []string{"withheld"}, want: []string{"libfoo-" + v + "-1"}})
	if err != nil {
		return "", err
	}
	skipped, err := e.heldBackByDependency()
	return excluded + "; " + skipped, err
}

// heldBackByDependency withholds an update by withholding what it newly
// requires: dom0 verifies and publishes the update (its name is delivered,
// so the withholding check passes), dnf skips it for the missing
// dependency and exits 0. The front end must fail and name it. The update
// moves from noarch to the machine's arch, which dnf allows (a check by exact arch
// missed it).
func (e *Env) heldBackByDependency() (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	installed, update := "movable-"+e.nextVersion()+"-1", "movable-"+e.nextVersion()+"-1"
	arch := machineArch()
	if _, err := e.publish(lab.PublishOptions{Specs: []string{installed}}); err != nil {
		return "", err
	}
	if _, err := e.honest("-y", "movable"); err != nil {
		return "", err
	}
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{update + " arch=" + arch + " requires=movable-lib", "movable-lib-1.0-1"}}); err != nil {
		return "", err
	}
	if err := e.deliver(e.currentDelivery(update + "." + arch + ".rpm")); err != nil {
		return "", err
	}
	u, err := e.update("-y")
	if err != nil {
		return "", err
	}
	want := "left out 1 verified update(s) of installed packages: " + update + "." + arch
	if u.Exit != 1 || !strings.Contains(u.Report.Message, want) {
		return "", fmt.Errorf("%s delivered without movable-lib: want exit 1 saying %q, got %s", update, want, u.summary())
	}
	after, err := e.installed()
	if err != nil {
		return "", err
	}
	if !slices.Contains(after, installed) || slices.ContainsFunc(after, func(p string) bool { return strings.HasPrefix(p, "movable-lib") }) {
		return "", fmt.Errorf("%s delivered without movable-lib: dom0 now has %v, want %s still", update, after, installed)
	}
	return "without its new dependency, " + update + "." + arch + " (over " + installed + ".noarch) is named held back (exit 1)", nil
}

func runM3(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	old := "m3-" + e.nextVersion()
	old = strings.ReplaceAll(old, ".", "-")
	if _, err := e.publish(lab.PublishOptions{Snapshot: old}); err != nil {
		return "", err
	}
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{"hello-" + e.nextVersion() + "-1"}}); err != nil {
		return "", err
	}
	if err := e.converge(); err != nil {
		return "", err
	}
	// After dom0's sync, the UpdateVM's copy of the repository definition
	// is the attacker's to change.
	if err := e.wrapDownloader(fmt.Sprintf(`#!/bin/sh
# attacker: resolve against an older snapshot of the mirror
/usr/lib/pedos/bin/pedos-download-dom0-updates.real "$@" || exit
sed -i 's|/repo/current/|/repo/snapshots/%s/|' /var/lib/PedOS/dom0-updates/etc/yum.repos.d/*.repo
`, old)); err != nil {
		return "", err
	}
	return e.refusedWith(attempt{label: "snapshot " + old, kinds: []string{"rollback"}})
}

func runM4(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	older, newer := e.nextVersion(), e.nextVersion()
	snapshot := strings.ReplaceAll("m4-"+older, ".", "-")
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{"hello-" + older + "-1"}, Snapshot: snapshot}); err != nil {
		return "", err
	}
	if _, err := e.publish(lab.PublishOptions{Specs: []string{"hello-" + newer + "-1"}}); err != nil {
		return "", err
	}
	// dom0 has seen the newest metadata (downloaded, not yet installed).
	if _, err := e.honest("--downloadonly"); err != nil {
		return "", err
	}
	name := "hello-" + older + "-1.noarch.rpm"
	var seen []string
	for _, c := range []struct {
		metadata string
		kinds    []string
	}{
		{"snapshots/" + snapshot, []string{"rollback"}},
		{"current", []string{"older-build", "withheld"}},
	} {
		if err := e.deliver(e.deliveryFrom(c.metadata, "current", name)); err != nil {
			return "", err
		}
		if _, err := e.metadataRefused(attempt{label: name + " with the metadata of " + c.metadata, kinds: c.kinds}); err != nil {
			return "", err
		}
		seen = append(seen, "with the metadata of "+c.metadata+": "+strings.Join(c.kinds, "+"))
	}
	// The same replay through another architecture: an older i686 build
	// while the newer one for the machine is listed (the older-build check compares
	// builds of one architecture, and dnf takes the machine's own); alone, then
	// beside the newer build with what that one requires held back, which has
	// dnf skip it and take the i686 one.
	machine := machineArch()
	if _, err := e.publish(lab.PublishOptions{Specs: []string{"multilib-" + older + "-1 arch=i686",
		"multilib-" + newer + "-1 arch=" + machine + " requires=multilib-dep", "multilib-dep-1.0-1"}}); err != nil {
		return "", err
	}
	name = "multilib-" + older + "-1.i686.rpm"
	for _, files := range [][]string{{name}, {name, "multilib-" + newer + "-1." + machine + ".rpm"}} {
		if err := e.deliver(e.deliveryFrom("current", "current", files...)); err != nil {
			return "", err
		}
		if _, err := e.metadataRefused(attempt{label: strings.Join(files, " and ") + " for `-y multilib`", args: []string{"-y", "multilib"}, kinds: []string{"other-arch"}}); err != nil {
			return "", err
		}
	}
	seen = append(seen, "multilib-"+older+".i686 while multilib-"+newer+"."+machine+" is listed, alone or beside it without its dependency: other-arch")
	return "hello-" + older + " replayed while hello-" + newer + " is listed: refused (exit 1) " + strings.Join(seen, "; "), nil
}

func runM5(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	first := strings.ReplaceAll("m5-"+e.nextVersion(), ".", "-")
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{"hello-" + e.nextVersion() + "-1"}, Snapshot: first}); err != nil {
		return "", err
	}
	v := e.nextVersion()
	if _, err := e.publish(lab.PublishOptions{Specs: []string{"hello-" + v + "-1"}}); err != nil {
		return "", err
	}
	if err := e.deliver(e.deliveryFrom("snapshots/"+first, "current", "hello-"+v+"-1.noarch.rpm")); err != nil {
		return "", err
	}
	return e.refusedWith(attempt{label: "current package, older snapshot's metadata", kinds: []string{"not-in-metadata"}})
}

func runM6(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	before := strings.ReplaceAll("m6-"+e.nextVersion(), ".", "-")
	if _, err := e.publish(lab.PublishOptions{Snapshot: before}); err != nil {
		return "", err
	}
	stray := "stray-" + e.nextVersion() + "-1"
	if _, err := e.publish(lab.PublishOptions{Specs: []string{stray}}); err != nil {
		return "", err
	}
	if err := e.deliver(e.deliveryFrom("snapshots/"+before, "current", stray+".noarch.rpm")); err != nil {
		return "", err
	}
	return e.refusedWith(attempt{label: stray + " with metadata that does not list it", kinds: []string{"extraneous"}})
}

func runM7(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	const key = "m7-package-only"
	rev, err := e.publishPending(lab.PublishOptions{Specs: []string{"hello-" + e.nextVersion() + "-1"}, MetadataKey: key})
	if err != nil {
		return "", err
	}
	// Whatever happens, the mirror's next revision is signed by the
	// publisher again, so later rows find it as before.
	defer e.publish(lab.PublishOptions{Specs: []string{fmt.Sprintf("m7-restore-%d-1", rev.Number)}})
	if _, err := e.trustLabKey(key); err != nil {
		return "", err
	}
	// The UpdateVM's own dnf checks the signature against the publisher's
	// key too and stops; the attacker forwards the metadata regardless.
	if err := e.deliver(e.deliveryFrom("current", "current", rev.Added...)); err != nil {
		return "", err
	}
	return e.refusedWith(attempt{label: "repomd.xml signed by a package key", kinds: []string{"wrong-key"}})
}

func runM8(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	v := e.nextVersion()
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{"libfoo-" + v + "-1"}}); err != nil {
		return "", err
	}
	if err := e.converge(); err != nil {
		return "", err
	}
	hello := "hello-" + e.nextVersion() + "-1"
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{hello}}); err != nil {
		return "", err
	}
	if err := e.deliver(e.deliveryFrom("current", "current", hello+".noarch.rpm", "libfoo-1.0-1.noarch.rpm")); err != nil {
		return "", err
	}
	return e.refusedWith(attempt{label: hello + " with libfoo-1.0-1", kinds: []string{"downgrade", "older-build"}})
}

// runM9: dom0's clock cannot be set back in a lab, so the lab moves trusted
// time forward instead: the publisher's metadata is dated 30 days after
// dom0's clock, and dom0 accepts it, which raises its time floor. A second
// repository (its own metadata key, as dom0 requires), frozen at a revision
// of today, then serves metadata that dom0's own clock calls fresh; against
// the floor it is 30 days old. With require_fresh = yes that is a refusal
// (stale). The lab's time floor stays 30 days ahead, so M9 has a lab of its
// own (group m9).
func runM9(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	const frozenKey = "m9-frozen"
	if _, err := e.publish(lab.PublishOptions{Specs: []string{"frozen-1-1"}, Snapshot: frozenKey, MetadataKey: frozenKey}); err != nil {
		return "", err
	}
	ahead := time.Now().Add(30 * 24 * time.Hour)
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{"hello-" + e.nextVersion() + "-1"}, Time: ahead}); err != nil {
		return "", err
	}
	if err := e.converge(); err != nil {
		return "", err
	}
	keyFile, err := e.trustLabKey(frozenKey)
	if err != nil {
		return "", err
	}
	repo, err := os.ReadFile(e.dom0Path("etc/yum.repos.d/pedos-lab.repo"))
	if err != nil {
		return "", err
	}
	frozen := strings.NewReplacer("[pedos-lab]", "[pedos-lab-frozen]", "/repo/current/", "/repo/snapshots/"+frozenKey+"/",
		"RPM-GPG-KEY-pedos-lab", "RPM-GPG-KEY-pedos-lab file:///"+keyFile).Replace(string(repo))
	if err := e.addDom0File("etc/yum.repos.d/pedos-lab-frozen.repo", []byte(frozen)); err != nil {
		return "", err
	}
	if err := e.setConf("repo.pedos-lab-frozen.metadata_key", "/"+keyFile, "require_fresh", "yes"); err != nil {
		return "", err
	}
	return e.refusedWith(attempt{label: "frozen repository", kinds: []string{"stale"}, want: []string{"pedos-lab-frozen"}})
}
