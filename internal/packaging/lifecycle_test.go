package packaging

// What an administrator does after the first install (docs/operations.md
// "Upgrading and removing"): upgrade with edited configuration, reinstall,
// remove and (DEB) purge, with the packages' scriptlets running in a root of
// their own, against a second build of the next version.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

var (
	nextOnce sync.Once
	next     builtPackages
	nextErr  error
)

// nextLine is what the next version adds to each configuration file it
// changes.
const nextLine = "# a line the next version adds\n"

// changedInNext are the configuration files (installed path: source) whose
// shipped content the next version changes. domains.conf stays the same, so
// that an edit to a file an upgrade does not change is covered too.
var changedInNext = map[string]string{
	"/etc/pedos/updates.conf":                     "dist/dom0/etc/pedos/updates.conf",
	"/etc/pedos/policy.d/50-pedos-updates.policy": "dist/dom0/etc/pedos/policy.d/50-pedos-updates.policy",
	"/etc/pedos/qrexec-daemon.env":                "dist/dom0/etc/pedos/qrexec-daemon.env",
	"/etc/pedos-rpc/PedOS.ReceiveUpdates":         "dist/dom0/etc/pedos-rpc/PedOS.ReceiveUpdates",
	"/etc/yum.real.repos.d/PedOS-cached.repo":     "dist/dom0/etc/yum.real.repos.d/PedOS-cached.repo",
	"/etc/pedos/qrexec-agent.env":                 "dist/vm/etc/pedos/qrexec-agent.env",
}

// nextPackages builds, once, the packages of the next version: a copy of the
// tree (the files git lists, as they are now) with packaging/VERSION bumped
// and changedInNext changed. The copy has no history, so its release is 1 and
// it sorts after this build by its version alone.
func nextPackages(t *testing.T) builtPackages {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: the next version's build copies the files git lists (make deps installs git)")
	}
	packages(t) // first: it fills the caches this build reuses
	nextOnce.Do(func() {
		tree, err := os.MkdirTemp("", "pedos-next-tree-")
		if err != nil {
			nextErr = err
			return
		}
		madeDirs = append(madeDirs, tree)
		if nextErr = copyTree(repoRoot(), tree); nextErr != nil {
			return
		}
		version, err := os.ReadFile(filepath.Join(tree, "packaging/VERSION"))
		if err != nil {
			nextErr = err
			return
		}
		bumped := strings.TrimSpace(string(version)) + ".1\n"
		if nextErr = os.WriteFile(filepath.Join(tree, "packaging/VERSION"), []byte(bumped), 0o644); nextErr != nil {
			return
		}
		for _, source := range changedInNext {
			if nextErr = appendFile(filepath.Join(tree, source), nextLine); nextErr != nil {
				return
			}
		}
		next, nextErr = buildPackages(tree, []string{"GIT_DIR=" + filepath.Join(tree, ".git")})
	})
	if nextErr != nil {
		t.Fatal(nextErr)
	}
	return next
}

// copyTree copies the files git lists in repo (tracked and new ones, with
// their uncommitted changes) to dest.
func copyTree(repo, dest string) error {
	list, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("git ls-files in %s: %w", repo, err)
	}
	for _, name := range strings.Split(strings.TrimSuffix(string(list), "\x00"), "\x00") {
		info, err := os.Lstat(filepath.Join(repo, name))
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the work tree, or not a file
		}
		content, err := os.ReadFile(filepath.Join(repo, name))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dest, name)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dest, name), content, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func appendFile(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// shipped is the content of a configuration file as a version ships it.
func shipped(t *testing.T, installed string, nextVersion bool) string {
	t.Helper()
	source, changed := changedInNext[installed]
	if !changed {
		source = "dist/dom0" + installed
	}
	content := readFile(t, filepath.Join(repoRoot(), source))
	if nextVersion && changed {
		content += nextLine
	}
	return content
}

// scriptPrograms are what the scriptlets run, besides the shell's builtins.
var scriptPrograms = []string{"sh", "mkdir", "rm", "rmdir", "systemd-tmpfiles"}

// requireScriptRoot skips where a root for the scriptlets cannot be made.
func requireScriptRoot(t *testing.T, tools ...string) {
	t.Helper()
	requireRoot(t, append([]string{"unshare", "ldd"}, append(scriptPrograms, tools...)...)...)
}

// scriptRoot makes an empty root in which rpm and dpkg can run the packages'
// scriptlets, which they run chrooted into it: the host's shell and the
// programs the scriptlets call (scriptPrograms and programs) with their
// libraries, /dev/null, and the users tmpfiles.d names. With systemd it looks
// booted with systemd (/run/systemd/system) and its systemctl only records
// its arguments in /systemctl.log (systemd cannot be PID 1 here); without, it
// is a chroot or a container without systemd, and systemctl must not be called.
func scriptRoot(t *testing.T, systemd bool, programs ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"bin", "sbin", "lib", "lib64"} {
		mkdirAll(t, filepath.Join(root, "usr", dir), 0o755)
		if err := os.Symlink("usr/"+dir, filepath.Join(root, dir)); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"etc", "dev", "proc", "run", "var/lib", "var/log"} {
		mkdirAll(t, filepath.Join(root, dir), 0o755)
	}
	mkdirAll(t, filepath.Join(root, "tmp"), fs.ModeSticky|0o777)
	for _, name := range append(slices.Clone(scriptPrograms), programs...) {
		copyProgram(t, root, name)
	}
	// createrepo_c's rpm library reads these.
	for _, rpmConfig := range []string{"/usr/lib/rpm/rpmrc", "/usr/lib/rpm/macros"} {
		if content, err := os.ReadFile(rpmConfig); err == nil {
			mkdirAll(t, filepath.Join(root, filepath.Dir(rpmConfig)), 0o755)
			writeFile(t, filepath.Join(root, rpmConfig), string(content))
		}
	}
	writeFile(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	writeFile(t, filepath.Join(root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n")
	if err := unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("cannot make /dev/null in a root for the scriptlets: %v", err)
	}
	// mknod's mode is filtered by the umask.
	if err := os.Chmod(filepath.Join(root, "dev/null"), 0o666); err != nil {
		t.Fatal(err)
	}
	if systemd {
		mkdirAll(t, filepath.Join(root, "run/systemd/system"), 0o755)
		writeFile(t, filepath.Join(root, "usr/bin/systemctl"), "#!/bin/sh\necho \"$*\" >>/systemctl.log\n")
		if err := os.Chmod(filepath.Join(root, "usr/bin/systemctl"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// copyProgram copies a host program into root at its host path, with the
// libraries ldd names.
func copyProgram(t *testing.T, root, name string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	libraries, err := exec.Command("ldd", path).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", path, err)
	}
	files := []string{path}
	for _, field := range strings.Fields(string(libraries)) {
		if strings.HasPrefix(field, "/") {
			files = append(files, field)
		}
	}
	for _, file := range files {
		content, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		mkdirAll(t, filepath.Join(root, filepath.Dir(file)), 0o755)
		if err := os.WriteFile(filepath.Join(root, file), content, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// systemctlCalls returns, and forgets, what root's systemctl was asked.
func systemctlCalls(t *testing.T, root string) []string {
	t.Helper()
	log := filepath.Join(root, "systemctl.log")
	content, err := os.ReadFile(log)
	if err != nil {
		return nil // never called
	}
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(content), "\n"), "\n")
}

// withProc runs argv with a new /proc mounted on root/proc in a private mount
// namespace, as in a container or a booted system: systemd-tmpfiles needs it.
func withProc(root string, argv ...string) []string {
	return append([]string{"unshare", "--mount", "--mount-proc=" + filepath.Join(root, "proc")}, argv...)
}

// rpmScripts runs rpm on root's database with the packages' scriptlets and
// returns its output, without the banner Debian's rpm prints before every
// change. proc mounts /proc in root.
func rpmScripts(t *testing.T, root string, proc bool, args ...string) []string {
	t.Helper()
	argv := append([]string{"rpm"}, rpmRootArgs(root, args...)...)
	if proc {
		argv = withProc(root, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = rpmEnv(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rpm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if line != "" && line != "rpm: RPM should not be used directly install RPM packages, use Alien instead!" &&
			line != "rpm: However assuming you know what you are doing..." {
			lines = append(lines, line)
		}
	}
	return lines
}

// dpkgScripts runs dpkg on root's database with the package's maintainer
// scripts and /proc mounted in root, with stdin empty (a prompt fails), and
// returns its output.
func dpkgScripts(t *testing.T, root string, args ...string) string {
	t.Helper()
	argv := withProc(root, append([]string{"dpkg", "--root=" + root, "--force-depends"}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// unitCgroup makes a cgroup whose last component is unit, in a hierarchy
// this host mounts (cgroup2, else v1's pids), and returns its cgroup.procs;
// it is removed when the test ends, once the processes moved there exited.
func unitCgroup(t *testing.T, unit string) string {
	t.Helper()
	var base string
	for _, dir := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/pids"} {
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
			base = dir
			break
		}
	}
	if base == "" {
		t.Skip("no cgroup hierarchy to make a unit's cgroup in")
	}
	parent, err := os.MkdirTemp(base, "pedos-test-")
	if err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	dir := filepath.Join(parent, unit)
	if err := os.Mkdir(dir, 0o755); err != nil {
		os.Remove(parent)
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() {
		os.Remove(dir)
		os.Remove(parent)
	})
	return filepath.Join(dir, "cgroup.procs")
}

// snapshot records every path under dirs of root: its type, mode, owner
// and, for a file, its content.
func snapshot(t *testing.T, root string, dirs ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			st := info.Sys().(*syscall.Stat_t)
			record := fmt.Sprintf("%v %d:%d", info.Mode(), st.Uid, st.Gid)
			if info.Mode().IsRegular() {
				record += " " + readFile(t, path)
			}
			paths[strings.TrimPrefix(path, root)] = record
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// sameSnapshot reports what changed between two snapshots.
func sameSnapshot(t *testing.T, step string, before, after map[string]string) {
	t.Helper()
	for path, was := range before {
		if now, ok := after[path]; !ok {
			t.Errorf("%s removed %s", step, path)
		} else if now != was {
			t.Errorf("%s changed %s: %q, was %q", step, path, now, was)
		}
	}
	for path := range after {
		if _, ok := before[path]; !ok {
			t.Errorf("%s added %s", step, path)
		}
	}
}

// edit is an administrator's edit of a configuration file; it returns the
// edited content.
func edit(t *testing.T, root, path string) string {
	t.Helper()
	edited := readFile(t, filepath.Join(root, path)) + "# the administrator's line\n"
	writeFile(t, filepath.Join(root, path), edited)
	return edited
}

// checkContent checks that each path of root has its content.
func checkContent(t *testing.T, step, root string, want map[string]string) {
	t.Helper()
	for path, content := range want {
		if got, err := os.ReadFile(filepath.Join(root, path)); err != nil {
			t.Errorf("after %s: %v", step, err)
		} else if string(got) != content {
			t.Errorf("after %s, %s is %q, want %q", step, path, got, content)
		}
	}
}

// checkAbsent checks that none of paths is in root.
func checkAbsent(t *testing.T, step, root string, paths ...string) {
	t.Helper()
	for _, path := range paths {
		if _, err := os.Lstat(filepath.Join(root, path)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after %s, %s is still there (%v)", step, path, err)
		}
	}
}

// packagedFiles are the paths of entries that are files or links, not
// directories and not configuration: what removing the package removes.
func packagedFiles(entries []entry, configs []string) []string {
	var paths []string
	for _, e := range entries {
		if !e.mode.IsDir() && !slices.Contains(configs, e.path) {
			paths = append(paths, e.path)
		}
	}
	return paths
}

// leaveDom0State writes what dom0's updates and its administrator leave and
// no package makes: the freshness record (rollback protection, M3), the last
// result, the update log, a trusted key, a published package in the cached
// repository, a killed delivery's staging directory (its unpacker's, F1) and
// a tmpfiles.d override that makes the cached repository private.
func leaveDom0State(t *testing.T, root string) {
	t.Helper()
	for path, content := range map[string]string{
		"/var/lib/PedOS/state/freshness.json":                       `{"time_floor":"2025-03-01T00:00:00Z","repos":{}}` + "\n",
		"/var/lib/PedOS/state/result.json":                          `{"accepted":[]}` + "\n",
		"/var/log/pedos/updates.log":                                `{"event":"finished"}` + "\n",
		"/etc/pki/rpm-gpg/RPM-GPG-KEY-pedos":                        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
		"/var/lib/PedOS/updates/rpm/pedos-example-1.0-1.noarch.rpm": "a verified package\n",
		"/var/lib/PedOS/staging/delivery/untrusted":                 "a killed delivery's file\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, path), content)
	}
	if err := os.Chown(filepath.Join(root, "/var/lib/PedOS/staging/delivery"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	override := strings.Replace(readFile(t, filepath.Join(repoRoot(), "packaging/tmpfiles/pedos-updates-dom0.conf")),
		"d /var/lib/PedOS/updates  0755", "d /var/lib/PedOS/updates  0700", 1)
	mkdirAll(t, filepath.Join(root, "etc/tmpfiles.d"), 0o755)
	writeFile(t, filepath.Join(root, "etc/tmpfiles.d/pedos-updates-dom0.conf"), override)
	if err := os.Chmod(filepath.Join(root, "var/lib/PedOS/updates"), 0o700); err != nil {
		t.Fatal(err)
	}
}

// dom0State is what leaveDom0State and the package's scriptlets made.
var dom0State = []string{"/var/lib/PedOS/state", "/var/lib/PedOS/updates", "/var/lib/PedOS/staging/delivery",
	"/var/log/pedos", "/etc/pki", "/etc/tmpfiles.d"}

// TestDom0Lifecycle upgrades, reinstalls, removes and installs again
// pedos-updates-dom0 with its scriptlets on a system booted with systemd:
// edited configuration survives each step (.rpmnew, .rpmsave), unedited
// configuration follows the package, the state, log, keyring and cached
// repository are never touched, and the qrexec daemon's unit is restarted on
// upgrade and stopped and disabled on removal.
func TestDom0Lifecycle(t *testing.T) {
	requireScriptRoot(t, "rpm", "createrepo_c", "systemd-sysusers")
	first, nextVersion := packages(t), nextPackages(t)
	root := scriptRoot(t, true, "createrepo_c", "systemd-sysusers")
	const unit = "pedos-qrexec-daemon.service"
	step := func(name string, wantCalls, wantOutput []string, args ...string) {
		t.Helper()
		out := rpmScripts(t, root, true, args...)
		if !equalSorted(out, wantOutput) {
			t.Errorf("%s printed %q, want %q", name, out, wantOutput)
		}
		if calls := systemctlCalls(t, root); !slices.Equal(calls, wantCalls) {
			t.Errorf("%s called systemctl %q, want %q", name, calls, wantCalls)
		}
	}

	step("install", []string{"daemon-reload"}, nil, "-i", "--nodeps", first.dom0RPM)
	checkEntries(t, root, append(dom0Entries, dir("/var/lib/PedOS/updates", 0o755), file("/var/lib/PedOS/updates/repodata/repomd.xml")))
	user := checkUnpackerUser(t, "install", root, "")
	if out := rpmInRoot(t, root, "-V", "--nodeps", "pedos-updates-dom0"); out != "" {
		t.Errorf("rpm -V reports changes after the scriptlets ran:\n%s", out)
	}

	const conf, policy, domains = "/etc/pedos/updates.conf", "/etc/pedos/policy.d/50-pedos-updates.policy", "/etc/pedos/domains.conf"
	edited := map[string]string{conf: edit(t, root, conf), policy: edit(t, root, policy), domains: edit(t, root, domains)}
	leaveDom0State(t, root)
	state := snapshot(t, root, dom0State...)

	// Upgrade: the edits stay; beside the two the next version changes,
	// its version as .rpmnew; the unedited files are the next version's.
	step("upgrade", []string{"daemon-reload", "try-restart " + unit, "daemon-reload"},
		[]string{"warning: " + conf + " created as " + conf + ".rpmnew", "warning: " + policy + " created as " + policy + ".rpmnew"},
		"-U", "--nodeps", nextVersion.dom0RPM)
	followed := map[string]string{conf + ".rpmnew": shipped(t, conf, true), policy + ".rpmnew": shipped(t, policy, true)}
	for _, path := range dom0Configs {
		if _, ok := edited[path]; !ok {
			followed[path] = shipped(t, path, true)
		}
	}
	checkContent(t, "upgrade", root, edited)
	checkContent(t, "upgrade", root, followed)
	checkAbsent(t, "upgrade", root, domains+".rpmnew")
	sameSnapshot(t, "upgrade", state, snapshot(t, root, dom0State...))
	checkUnpackerUser(t, "upgrade", root, user)

	// Reinstalling the same build runs its %post, not its %postun (rpm 4.18).
	step("reinstall", []string{"daemon-reload", "try-restart " + unit}, nil,
		"-i", "--replacepkgs", "--nodeps", nextVersion.dom0RPM)
	checkContent(t, "reinstall", root, edited)
	checkContent(t, "reinstall", root, followed)
	sameSnapshot(t, "reinstall", state, snapshot(t, root, dom0State...))

	// Removal: programs, unit and unedited configuration go; the edits stay
	// as .rpmsave, and the state and log as they were.
	var saved []string
	savedContent := map[string]string{}
	for path, content := range edited {
		saved = append(saved, "warning: "+path+" saved as "+path+".rpmsave")
		savedContent[path+".rpmsave"] = content
	}
	step("removal", []string{"disable --now " + unit, "daemon-reload"}, saved, "-e", "pedos-updates-dom0")
	checkContent(t, "removal", root, savedContent)
	checkAbsent(t, "removal", root, append(packagedFiles(dom0Entries, dom0Configs), conf, policy, domains,
		"/etc/pedos/qrexec-daemon.env", "/usr/lib/pedos")...)
	sameSnapshot(t, "removal", state, snapshot(t, root, dom0State...))
	// The user stays, as system users do: files it owns may outlive it.
	checkUnpackerUser(t, "removal", root, user)

	// Installed again: the freshness record is the one before the removal.
	step("install after removal", []string{"daemon-reload"}, nil, "-i", "--nodeps", first.dom0RPM)
	checkEntries(t, root, dom0Entries)
	sameSnapshot(t, "install after removal", state, snapshot(t, root, dom0State...))
	checkUnpackerUser(t, "install after removal", root, user)
}

// checkUnpackerUser requires that root's /etc/passwd has exactly one entry
// for the user the shipped updates.conf names as unpacker_user: a system
// user with a group of its own, no home and no login (want, if not "", is
// the entry it must still be). It returns the entry.
func checkUnpackerUser(t *testing.T, step, root, want string) string {
	t.Helper()
	const name = "pedos-unpack"
	if !strings.Contains(shipped(t, "/etc/pedos/updates.conf", false), "\nunpacker_user = "+name+"\n") {
		t.Fatalf("the shipped updates.conf does not name %s as unpacker_user", name)
	}
	var entries []string
	for _, line := range strings.Split(readFile(t, filepath.Join(root, "etc/passwd")), "\n") {
		if strings.HasPrefix(line, name+":") {
			entries = append(entries, line)
		}
	}
	if len(entries) != 1 {
		t.Fatalf("after the %s, /etc/passwd has %d entries for %s, want 1: %q", step, len(entries), name, entries)
	}
	fields := strings.Split(entries[0], ":")
	uid, err := strconv.Atoi(fields[2])
	if want != "" && entries[0] != want {
		t.Errorf("after the %s, %s is %q, was %q", step, name, entries[0], want)
	}
	if err != nil || uid <= 0 || uid >= 1000 || fields[3] == "0" || fields[5] != "/" || fields[6] != "/usr/sbin/nologin" {
		t.Errorf("after the %s, %s is %q: want a system uid (1–999), a group other than root's, home / and no login", step, name, entries[0])
	}
	groups := readFile(t, filepath.Join(root, "etc/group"))
	if !slices.ContainsFunc(strings.Split(groups, "\n"), func(line string) bool {
		group := strings.Split(line, ":") // name, password ("x", or "!" from useradd), gid, members
		return len(group) == 4 && group[0] == name && group[2] == fields[3]
	}) {
		t.Errorf("after the %s, /etc/group has no group %s with gid %s:\n%s", step, name, fields[3], groups)
	}
	return entries[0]
}

// TestDom0InstallIntoImage installs pedos-updates-dom0 into a root without
// /proc and without systemd, as rpm --root or dnf --installroot does when an
// image is built: systemd-tmpfiles cannot run there, yet the cached
// repository must exist with its metadata (a dom0 dnf fails without it).
func TestDom0InstallIntoImage(t *testing.T) {
	requireScriptRoot(t, "rpm", "createrepo_c", "systemd-sysusers", "useradd", "groupadd", "grep")
	pkgs := packages(t)
	// The unpacker's user comes from systemd-sysusers, or from useradd
	// where there is none (an image without systemd), also where a group
	// of its name is left from an earlier user.
	for _, tc := range []struct {
		name, group string
		makesUsers  []string
	}{
		{"systemd-sysusers", "", []string{"systemd-sysusers"}},
		{"useradd", "", []string{"useradd", "groupadd"}},
		{"useradd with the group there", "pedos-unpack:x:990:\n", []string{"useradd", "groupadd"}},
		{"systemd-sysusers with the group there", "pedos-unpack:x:990:\n", []string{"systemd-sysusers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := scriptRoot(t, false, append([]string{"createrepo_c", "grep"}, tc.makesUsers...)...)
			if err := appendFile(filepath.Join(root, "etc/group"), tc.group); err != nil {
				t.Fatal(err)
			}
			out := rpmScripts(t, root, false, "-i", "--nodeps", pkgs.dom0RPM)
			checkEntries(t, root, append(dom0Entries, dir("/var/lib/PedOS/updates", 0o755), file("/var/lib/PedOS/updates/repodata/repomd.xml")))
			user := checkUnpackerUser(t, "install", root, "")
			if tc.group != "" && strings.Split(user, ":")[3] != "990" {
				t.Errorf("pedos-unpack %q is not in the group that was there (990)", user)
			}
			if slices.ContainsFunc(out, func(line string) bool { return strings.Contains(line, "pedos-unpack") }) {
				t.Errorf("the install printed %q", out)
			}
		})
	}
	// A pedos-unpack that was there is kept: with a warning if it is a
	// person's account, without one if it is a system user with no login.
	for _, tc := range []struct{ passwd, warning string }{
		{"pedos-unpack:x:1001:1001::/home/pedos-unpack:/bin/bash", "warning: pedos-unpack (uid 1001, shell /bin/bash), the unpacker's user, is not a system user without a login: make it one, or name another in /etc/pedos/updates.conf (unpacker_user)"},
		{"pedos-unpack:x:998:998::/:/bin/false", ""},
	} {
		root := scriptRoot(t, false, "createrepo_c", "grep", "systemd-sysusers")
		gid := strings.Split(tc.passwd, ":")[3]
		for file, line := range map[string]string{"etc/passwd": tc.passwd + "\n", "etc/group": "pedos-unpack:x:" + gid + ":\n"} {
			if err := appendFile(filepath.Join(root, file), line); err != nil {
				t.Fatal(err)
			}
		}
		out := rpmScripts(t, root, false, "-i", "--nodeps", pkgs.dom0RPM)
		warned := slices.ContainsFunc(out, func(line string) bool { return strings.Contains(line, "pedos-unpack") })
		if tc.warning != "" && !slices.Contains(out, tc.warning) || tc.warning == "" && warned {
			t.Errorf("an existing %q: the install printed %q, want the warning %q", tc.passwd, out, tc.warning)
		}
	}
}

// leaveVMCache writes what downloads leave in the UpdateVM's fake
// installroot, and what is in /var/lib/PedOS but not the package's.
func leaveVMCache(t *testing.T, root string) {
	t.Helper()
	for _, path := range []string{"/var/lib/PedOS/dom0-updates/var/lib/rpm/rpmdb.sqlite",
		"/var/lib/PedOS/dom0-updates/packages/pedos-example-1.0-1.noarch.rpm", "/var/lib/PedOS/other/file"} {
		mkdirAll(t, filepath.Join(root, filepath.Dir(path)), 0o755)
		writeFile(t, filepath.Join(root, path), path+"\n")
	}
}

// TestVMRPMLifecycle upgrades and removes the UpdateVM's RPM, with its
// scriptlets, in a root without systemd: they must not call systemctl, the
// edited configuration survives, and the downloads stay.
func TestVMRPMLifecycle(t *testing.T) {
	requireScriptRoot(t, "rpm")
	first, nextVersion := packages(t), nextPackages(t)
	root := scriptRoot(t, false)
	const env = "/etc/pedos/qrexec-agent.env"

	if out := rpmScripts(t, root, true, "-i", "--nodeps", first.vmRPM); len(out) > 0 {
		t.Errorf("install printed %q", out)
	}
	checkEntries(t, root, vmEntries)
	edited := edit(t, root, env)
	leaveVMCache(t, root)
	cache := snapshot(t, root, "/var/lib/PedOS")

	out := rpmScripts(t, root, true, "-U", "--nodeps", nextVersion.vmRPM)
	if want := []string{"warning: " + env + " created as " + env + ".rpmnew"}; !slices.Equal(out, want) {
		t.Errorf("upgrade printed %q, want %q", out, want)
	}
	checkContent(t, "upgrade", root, map[string]string{env: edited, env + ".rpmnew": shipped(t, env, true)})
	sameSnapshot(t, "upgrade", cache, snapshot(t, root, "/var/lib/PedOS"))

	out = rpmScripts(t, root, true, "-e", "pedos-updates-vm")
	if want := []string{"warning: " + env + " saved as " + env + ".rpmsave"}; !slices.Equal(out, want) {
		t.Errorf("removal printed %q, want %q", out, want)
	}
	checkContent(t, "removal", root, map[string]string{env + ".rpmsave": edited})
	checkAbsent(t, "removal", root, append(packagedFiles(vmEntries, nil), env, "/usr/lib/pedos")...)
	sameSnapshot(t, "removal", cache, snapshot(t, root, "/var/lib/PedOS"))
	if calls := systemctlCalls(t, root); calls != nil {
		t.Errorf("systemctl was called without systemd: %q", calls)
	}
}

// TestVMDEBLifecycle upgrades (unattended, keeping the edited conffile as
// docs/operations.md says), reinstalls, removes and purges the UpdateVM's
// DEB with its maintainer scripts on a system booted with systemd.
func TestVMDEBLifecycle(t *testing.T) {
	requireScriptRoot(t, "dpkg")
	first, nextVersion := packages(t), nextPackages(t)
	root := scriptRoot(t, true)
	for _, dir := range []string{"info", "updates", "triggers"} {
		mkdirAll(t, filepath.Join(root, "var/lib/dpkg", dir), 0o755)
	}
	writeFile(t, filepath.Join(root, "var/lib/dpkg/status"), "")
	const unit = "pedos-qrexec-agent.service"
	const env = "/etc/pedos/qrexec-agent.env"
	step := func(name string, wantCalls []string, args ...string) {
		t.Helper()
		dpkgScripts(t, root, args...)
		if calls := systemctlCalls(t, root); !slices.Equal(calls, wantCalls) {
			t.Errorf("%s called systemctl %q, want %q", name, calls, wantCalls)
		}
	}
	restarted := []string{"daemon-reload", "daemon-reload", "try-restart " + unit}

	step("install", []string{"daemon-reload", "try-restart " + unit}, "-i", first.vmDEB)
	checkEntries(t, root, vmEntries)
	edited := edit(t, root, env)
	leaveVMCache(t, root)
	cache := snapshot(t, root, "/var/lib/PedOS")

	step("upgrade", restarted, "--force-confdef", "--force-confold", "-i", nextVersion.vmDEB)
	checkContent(t, "upgrade", root, map[string]string{env: edited, env + ".dpkg-dist": shipped(t, env, true)})
	sameSnapshot(t, "upgrade", cache, snapshot(t, root, "/var/lib/PedOS"))

	step("reinstall", restarted, "-i", nextVersion.vmDEB)
	checkContent(t, "reinstall", root, map[string]string{env: edited})
	sameSnapshot(t, "reinstall", cache, snapshot(t, root, "/var/lib/PedOS"))

	// Run through the agent (dom0 upgrading the package over qrexec), in a
	// cgroup named as the unit's: a restart would kill this dpkg with the
	// unit's control group, so none is asked for.
	procs := unitCgroup(t, unit)
	argv := withProc(root, "dpkg", "--root="+root, "--force-depends", "-i", nextVersion.vmDEB)
	cmd := exec.Command("sh", append([]string{"-c", `echo $$ >"$0" && exec "$@"`, procs}, argv...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "note: "+unit+" runs this upgrade, so it was not restarted") {
		t.Errorf("reinstall through the agent: %v, output:\n%s", err, out)
	}
	if calls := systemctlCalls(t, root); !slices.Equal(calls, []string{"daemon-reload", "daemon-reload"}) {
		t.Errorf("reinstall through the agent called systemctl %q, want no try-restart", calls)
	}
	// Run in another unit's cgroup whose name merely ends in the unit's
	// (or holds it): the agent is not running the upgrade, so it is
	// restarted as any upgrade restarts it.
	for _, other := range []string{"not-" + unit, unit + ".d"} {
		procs := unitCgroup(t, other)
		cmd := exec.Command("sh", append([]string{"-c", `echo $$ >"$0" && exec "$@"`, procs}, argv...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
		if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), "runs this upgrade") {
			t.Errorf("reinstall in the cgroup %s: %v, output:\n%s", other, err, out)
		}
		if calls := systemctlCalls(t, root); !slices.Equal(calls, restarted) {
			t.Errorf("reinstall in the cgroup %s called systemctl %q, want %q", other, calls, restarted)
		}
	}

	step("removal", []string{"disable --now " + unit, "daemon-reload"}, "-r", "pedos-updates-vm")
	checkContent(t, "removal", root, map[string]string{env: edited})
	checkAbsent(t, "removal", root, append(packagedFiles(vmEntries, []string{env}), "/usr/lib/pedos")...)
	sameSnapshot(t, "removal", cache, snapshot(t, root, "/var/lib/PedOS"))

	// Purge: the configuration and the downloads go, what is not the
	// package's stays.
	step("purge", []string{"daemon-reload"}, "-P", "pedos-updates-vm")
	checkAbsent(t, "purge", root, "/etc/pedos", "/var/lib/PedOS/dom0-updates")
	checkContent(t, "purge", root, map[string]string{"/var/lib/PedOS/other/file": "/var/lib/PedOS/other/file\n"})
}
