package packaging

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/testbin"
)

// builtPackages is what scripts/packages.sh made, once per test process.
type builtPackages struct {
	dom0RPM, vmRPM, vmDEB string
}

var (
	buildOnce sync.Once
	built     builtPackages
	buildErr  error
	// madeDirs are the temporary directories the builds made (outputs, a
	// copy of the tree), removed when the tests end.
	madeDirs []string
)

func TestMain(m *testing.M) {
	code := testbin.Main(m)
	for _, dir := range madeDirs {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// repoRoot is the repository's top directory, found from this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// packages builds the three packages with the real `make packages` script
// (about a minute the first time: it builds nfpm from the module proxy).
func packages(t *testing.T) builtPackages {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = buildPackages(repoRoot(), nil) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// buildPackages runs scripts/packages.sh of the tree tree into a new
// temporary directory, with env added to the test's environment.
func buildPackages(tree string, env []string) (builtPackages, error) {
	out, err := os.MkdirTemp("", "pedos-packages-test-")
	if err != nil {
		return builtPackages{}, err
	}
	madeDirs = append(madeDirs, out)
	cmd := exec.Command("scripts/packages.sh")
	cmd.Dir = tree
	cmd.Env = append(append(os.Environ(), "PEDOS_PACKAGES_OUT="+out), env...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return builtPackages{}, fmt.Errorf("%s/scripts/packages.sh: %v\n%s", tree, err, output)
	}
	var found []string
	for _, pattern := range []string{"pedos-updates-dom0-*.rpm", "pedos-updates-vm-*.rpm", "pedos-updates-vm_*.deb"} {
		m, _ := filepath.Glob(filepath.Join(out, pattern))
		if len(m) != 1 {
			return builtPackages{}, fmt.Errorf("expected one %s in %s, found %v", pattern, out, m)
		}
		found = append(found, m[0])
	}
	return builtPackages{dom0RPM: found[0], vmRPM: found[1], vmDEB: found[2]}, nil
}

// requireRoot skips tests that install packages: rpm --root and dpkg need
// root to set owners, and running the installed programs in their root
// (unshare --root) needs it too.
func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("installing packages into a root directory needs root (CI runs as root)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
}

// rpmInRoot runs rpm on the database of root. Debian's rpm keeps its
// database in ~/.rpmdb unless told (notes/real-tools.md), so the path is
// given, and HOME is private so that nothing lands in the real one.
func rpmInRoot(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command("rpm", rpmRootArgs(root, args...)...)
	cmd.Env = rpmEnv(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rpm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func rpmRootArgs(root string, args ...string) []string {
	return append([]string{"--root", root, "--define", "_dbpath /var/lib/rpm"}, args...)
}

func rpmEnv(t *testing.T) []string {
	return []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C", "HOME=" + t.TempDir()}
}

// installRPM installs pkg into root without its scriptlets: they run
// chrooted into root, which has no /bin/sh (the tmpfiles entries they apply
// are checked by TestUnitsAndTmpfiles instead).
func installRPM(t *testing.T, root, pkg string) {
	t.Helper()
	rpmInRoot(t, root, "-i", "--nodeps", "--noscripts", pkg)
}

// entry is one installed path and what it must be.
type entry struct {
	path string
	mode fs.FileMode // permission and type bits
	link string      // symlink target
}

func program(name string) entry {
	return entry{path: "/usr/lib/pedos/bin/" + name, mode: 0o755}
}

func binLink(name string) entry {
	return entry{path: "/usr/bin/" + name, mode: fs.ModeSymlink | 0o777, link: "/usr/lib/pedos/bin/" + name}
}

func file(path string) entry { return entry{path: path, mode: 0o644} }

func dir(path string, perm fs.FileMode) entry { return entry{path: path, mode: fs.ModeDir | perm} }

var dom0Entries = []entry{
	program("pedos-dom0-update"), program("pedos-receive-updates"), program("qfile-dom0-unpacker"),
	program("pedos-rpmcheck"), program("qrexec-daemon"), program("qrexec-client"),
	program("pedos-run"), program("pedos-policy-eval"),
	binLink("pedos-dom0-update"), binLink("pedos-run"), binLink("pedos-policy-eval"), binLink("pedos-rpmcheck"),
	file("/etc/pedos/updates.conf"), file("/etc/pedos/policy.d/50-pedos-updates.policy"),
	file("/etc/pedos/domains.conf"), file("/etc/pedos/qrexec-daemon.env"),
	file("/etc/pedos-rpc/PedOS.ReceiveUpdates"), file("/etc/yum.real.repos.d/PedOS-cached.repo"),
	file("/etc/logrotate.d/pedos-updates"),
	file("/usr/lib/systemd/system/pedos-qrexec-daemon.service"),
	file("/usr/lib/tmpfiles.d/pedos-updates-dom0.conf"), file("/usr/lib/sysusers.d/pedos-updates-dom0.conf"),
	{path: qubesWrapper, mode: 0o755}, file(qubesSudoers),
	dir("/etc/yum.real.repos.d", 0o755), dir("/usr/share/pedos", 0o755), dir("/usr/share/pedos/qubes", 0o755),
	dir("/usr/share/doc/pedos-updates-dom0", 0o755), file("/usr/share/doc/pedos-updates-dom0/operations.md"),
	dir("/var/lib/PedOS", 0o755), dir("/var/lib/PedOS/state", 0o700),
	dir("/var/lib/PedOS/staging", 0o711), dir("/var/log/pedos", 0o750),
}

var dom0Configs = []string{
	"/etc/pedos-rpc/PedOS.ReceiveUpdates", "/etc/pedos/domains.conf",
	"/etc/pedos/policy.d/50-pedos-updates.policy", "/etc/pedos/qrexec-daemon.env",
	"/etc/pedos/updates.conf", "/etc/yum.real.repos.d/PedOS-cached.repo",
	"/etc/logrotate.d/pedos-updates",
}

var vmEntries = []entry{
	program("pedos-download-dom0-updates"), program("qfile-agent"), program("qrexec-agent"),
	program("qrexec-client-vm"), binLink("pedos-download-dom0-updates"),
	file("/etc/pedos/qrexec-agent.env"),
	file("/usr/lib/systemd/system/pedos-qrexec-agent.service"),
	file("/usr/lib/tmpfiles.d/pedos-updates-vm.conf"),
	dir("/usr/share/doc/pedos-updates-vm", 0o755), file("/usr/share/doc/pedos-updates-vm/operations.md"),
	dir("/var/lib/PedOS", 0o755), dir("/var/lib/PedOS/dom0-updates", 0o755),
}

// The PedOS/Qubes service wrapper and its sudoers drop-in (docs/deploy-qubes.md),
// shipped inactive in the dom0 package.
const (
	qubesWrapper = "/usr/share/pedos/qubes/PedOS.ReceiveUpdates"
	qubesSudoers = "/usr/share/pedos/qubes/pedos-receive-updates.sudoers"
)

// checkEntries compares each installed path with what it must be, and checks
// that every installed program has its man page beside it in the package.
func checkEntries(t *testing.T, root string, entries []entry) {
	t.Helper()
	for _, e := range entries {
		info, err := os.Lstat(filepath.Join(root, e.path))
		if err != nil {
			t.Errorf("%s: %v", e.path, err)
			continue
		}
		if got := info.Mode() & (fs.ModeType | fs.ModePerm); got != e.mode {
			t.Errorf("%s: mode %v, want %v", e.path, got, e.mode)
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			if st := info.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
				t.Errorf("%s: owned by %d:%d, want root", e.path, st.Uid, st.Gid)
			}
		}
		if e.link != "" {
			if got, _ := os.Readlink(filepath.Join(root, e.path)); got != e.link {
				t.Errorf("%s -> %q, want %q", e.path, got, e.link)
			}
			if _, err := os.Stat(filepath.Join(root, e.link)); err != nil {
				t.Errorf("%s: dangling link: %v", e.path, err)
			}
		}
		if name, ok := strings.CutPrefix(e.path, "/usr/lib/pedos/bin/"); ok {
			pages, _ := filepath.Glob(filepath.Join(root, "usr/share/man/man[18]", name+".[18].gz"))
			if len(pages) != 1 {
				t.Errorf("%s has no man page in the package", name)
			}
		}
	}
}

// sameAsRepo checks that each installed file is the repository's file.
func sameAsRepo(t *testing.T, root string, installedToRepo map[string]string) {
	t.Helper()
	for installed, source := range installedToRepo {
		got, err := os.ReadFile(filepath.Join(root, installed))
		if err != nil {
			t.Error(err)
			continue
		}
		want, err := os.ReadFile(filepath.Join(repoRoot(), source))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("installed %s differs from %s", installed, source)
		}
	}
}

// checkRPM installs pkg into root and checks its files, rpm's own
// verification, and that exactly configs are %config(noreplace).
func checkRPM(t *testing.T, root, pkg, name string, entries []entry, configs []string) {
	t.Helper()
	installRPM(t, root, pkg)
	checkEntries(t, root, entries)
	// Every directory listed is the package's own: removing it takes them.
	for _, e := range entries {
		if e.mode.IsDir() {
			if owner := rpmInRoot(t, root, "-qf", "--qf", "%{NAME}", e.path); owner != name {
				t.Errorf("directory %s is owned by %q, not %s", e.path, owner, name)
			}
		}
	}
	// rpm's own check: every file, mode, owner and digest as packaged.
	if out := rpmInRoot(t, root, "-V", "--nodeps", name); out != "" {
		t.Errorf("rpm -V reports changes right after install:\n%s", out)
	}
	if got := strings.Fields(rpmInRoot(t, root, "-qc", name)); !equalSorted(got, configs) {
		t.Errorf("config files %v, want %v", got, configs)
	}
	// Every man page and page of docs/ is %doc, every licence %license.
	for flag, dirs := range map[string][]string{"-qd": {"usr/share/man", "usr/share/doc/" + name}, "-qL": {"usr/share/licenses/" + name}} {
		var want []string
		for _, dir := range dirs {
			_ = filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					want = append(want, "/"+strings.TrimPrefix(path, root+"/"))
				}
				return nil
			})
		}
		if got := strings.Fields(rpmInRoot(t, root, flag, name)); len(want) == 0 || !equalSorted(got, want) {
			t.Errorf("rpm %s %s lists %v, want %v", flag, name, got, want)
		}
	}
	// %config(noreplace) is flag "n"; "c" alone would overwrite edits.
	flags := rpmInRoot(t, root, "-q", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", name)
	for _, c := range configs {
		if !strings.Contains(flags, "cn "+c+"\n") {
			t.Errorf("%s is not %%config(noreplace):\n%s", c, flags)
		}
	}
}

func TestDom0RPM(t *testing.T) {
	requireRoot(t, "rpm", "unshare")
	pkgs := packages(t)
	root := t.TempDir()
	checkRPM(t, root, pkgs.dom0RPM, "pedos-updates-dom0", dom0Entries, dom0Configs)
	sameAsRepo(t, root, map[string]string{
		"/etc/pedos/updates.conf":                     "dist/dom0/etc/pedos/updates.conf",
		"/etc/pedos/policy.d/50-pedos-updates.policy": "dist/dom0/etc/pedos/policy.d/50-pedos-updates.policy",
		"/etc/pedos-rpc/PedOS.ReceiveUpdates":         "dist/dom0/etc/pedos-rpc/PedOS.ReceiveUpdates",
		"/etc/yum.real.repos.d/PedOS-cached.repo":     "dist/dom0/etc/yum.real.repos.d/PedOS-cached.repo",
		"/etc/logrotate.d/pedos-updates":              "dist/dom0/etc/logrotate.d/pedos-updates",
		qubesWrapper:                                  "dist/qubes/PedOS.ReceiveUpdates",
		qubesSudoers:                                  "dist/qubes/pedos-receive-updates.sudoers",
	})
	checkDocs(t, root, "pedos-updates-dom0")
	checkLicences(t, root, "pedos-updates-dom0", dom0Entries)
	checkRPMHeader(t, pkgs.dom0RPM)

	// The installed programs say which release and commit they are.
	version, err := inRoot(t, root, nil, "/usr/bin/pedos-dom0-update", "--version").Output()
	want := "pedos-dom0-update " + strings.TrimSpace(readFile(t, filepath.Join(repoRoot(), "packaging/VERSION"))) + " (commit "
	if head, gitErr := exec.Command("git", "-C", repoRoot(), "rev-parse", "--short=12", "HEAD").Output(); gitErr == nil {
		want += strings.TrimSpace(string(head))
	}
	if err != nil || !strings.HasPrefix(string(version), want) {
		t.Errorf("pedos-dom0-update --version: %q (%v), want it to begin %q", version, err, want)
	}

	// The installed programs read the installed configuration at its real
	// paths (root as their root directory, as on a host). A wrong caller is refused naming the
	// UpdateVM of the shipped updates.conf (C1).
	const session = "0123456789abcdef0123456789abcdef"
	receive := []string{"/usr/lib/pedos/bin/pedos-receive-updates", session}
	code, stderr := runInRoot(t, root, []string{"QREXEC_REMOTE_DOMAIN=work"}, receive...)
	if code != 126 || !strings.Contains(stderr, "domain work called PedOS.ReceiveUpdates, but only the UpdateVM sys-firewall may deliver updates") {
		t.Errorf("wrong caller: exit %d, want 126 and the refusal naming sys-firewall:\n%s", code, stderr)
	}

	// An administrator's edit survives reinstalling the package (noreplace),
	// and the service then accepts that caller and refuses the session (C2).
	conf := filepath.Join(root, "etc/pedos/updates.conf")
	edited := strings.Replace(readFile(t, conf), "\nupdatevm = sys-firewall\n", "\nupdatevm = work\n", 1)
	writeFile(t, conf, edited)
	rpmInRoot(t, root, "-i", "--replacepkgs", "--nodeps", "--noscripts", pkgs.dom0RPM)
	if readFile(t, conf) != edited {
		t.Fatal("reinstalling the package replaced the edited updates.conf")
	}
	code, stderr = runInRoot(t, root, []string{"QREXEC_REMOTE_DOMAIN=work"}, receive...)
	if code != 126 || !strings.Contains(stderr, "no update session is waiting") {
		t.Errorf("configured caller without a session: exit %d, want 126 and no session:\n%s", code, stderr)
	}
}

// TestDom0ServiceThroughQrexec runs the installed qrexec-daemon with the
// installed domains, policy and service file, and calls PedOS.ReceiveUpdates
// with the VM package's qrexec-client-vm: the UpdateVM's call reaches the
// installed pedos-receive-updates (which refuses the session: none is live),
// another domain's call is denied by the shipped policy.
func TestDom0ServiceThroughQrexec(t *testing.T) {
	requireRoot(t, "rpm", "dpkg-deb", "unshare")
	pkgs := packages(t)
	root, vm := t.TempDir(), t.TempDir()
	installRPM(t, root, pkgs.dom0RPM)
	extractDEB(t, vm, pkgs.vmDEB)
	mkdirAll(t, filepath.Join(root, "run"), 0o755)
	// What an administrator does (docs/deploy-kvm-vsock.md): name the
	// UpdateVM in domains.conf. A second domain shows the policy's deny.
	domains := filepath.Join(root, "etc/pedos/domains.conf")
	writeFile(t, domains, strings.Replace(readFile(t, domains), "#sys-firewall ", "sys-firewall ", 1)+"work\n")

	var daemonLog testbin.Buffer
	daemon := inRoot(t, root, nil, "/usr/lib/pedos/bin/qrexec-daemon")
	daemon.Stdout, daemon.Stderr = &daemonLog, &daemonLog
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
	})
	sockets := filepath.Join(root, "run/pedos/qrexec")
	for _, domain := range []string{"sys-firewall", "work"} {
		waitForSocket(t, filepath.Join(sockets, domain, "daemon.sock"), &daemonLog)
	}

	call := func(domain string) (int, string) {
		cmd := exec.Command(filepath.Join(vm, "usr/lib/pedos/bin/qrexec-client-vm"),
			"dom0", "PedOS.ReceiveUpdates+0123456789abcdef0123456789abcdef")
		cmd.Env = []string{"PEDOS_QREXEC_SOCKET=" + filepath.Join(sockets, domain, "daemon.sock")}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	if code, stderr := call("sys-firewall"); code != 126 {
		t.Errorf("UpdateVM's call: exit %d, want 126 (the service refuses: no live session); %s", code, stderr)
	}
	// The daemon logs the service's stderr as it reads it, which may be
	// after the caller has the exit status.
	if !waitForLog(&daemonLog, "no update session is waiting") {
		t.Errorf("the installed service did not run for the UpdateVM; daemon log:\n%s", daemonLog.String())
	}
	if code, stderr := call("work"); code != 126 {
		t.Errorf("another domain's call: exit %d, want 126 (denied by policy); %s", code, stderr)
	}
	denied := waitForLog(&daemonLog, "call denied")
	log := daemonLog.String()
	if !denied || strings.Count(log, "no update session is waiting") != 1 {
		t.Errorf("another domain's call was not denied before the service ran; daemon log:\n%s", log)
	}
}

func TestVMPackages(t *testing.T) {
	requireRoot(t, "rpm", "dpkg-deb")
	pkgs := packages(t)

	rpmRoot := t.TempDir()
	checkRPM(t, rpmRoot, pkgs.vmRPM, "pedos-updates-vm", vmEntries, []string{"/etc/pedos/qrexec-agent.env"})
	checkDocs(t, rpmRoot, "pedos-updates-vm")
	checkLicences(t, rpmRoot, "pedos-updates-vm", vmEntries)
	checkRPMHeader(t, pkgs.vmRPM)

	deb := t.TempDir()
	extractDEB(t, deb, pkgs.vmDEB)
	checkEntries(t, deb, vmEntries)
	conffiles := strings.Fields(debControlFile(t, pkgs.vmDEB, "conffiles"))
	if !equalSorted(conffiles, []string{"/etc/pedos/qrexec-agent.env"}) {
		t.Errorf("DEB conffiles %v", conffiles)
	}
	sameAsRepo(t, deb, map[string]string{"/etc/pedos/qrexec-agent.env": "dist/vm/etc/pedos/qrexec-agent.env"})
	checkDocs(t, deb, "pedos-updates-vm")
	// The DEB's copyright file names every module its programs link, and holds
	// their licences (Go's among them) in full.
	copyright := readFile(t, filepath.Join(deb, "usr/share/doc/pedos-updates-vm/copyright"))
	licence := goLicence(t)
	for _, module := range linkedModules(t, vmEntries) {
		if !strings.Contains(copyright, "\n  "+module+" ") || !strings.Contains(copyright, "\n"+strings.ReplaceAll(module, "/", "_")+".") {
			t.Errorf("the DEB's copyright file does not name %s or holds no licence of it", module)
		}
	}
	if !strings.Contains(copyright, licence) {
		t.Error("the DEB's copyright file does not hold Go's licence")
	}
	// Nor this project among them, nor where it was built (two builds of one commit are
	// the same bytes).
	if strings.Contains(copyright, "\n  pedos.dev/updates") || strings.Contains(copyright, filepath.Clean(repoRoot())) {
		t.Error("the DEB's copyright file names this project as a third-party module, or the build's directory")
	}

	// dpkg -l shows the first line of the description: it must be the
	// one-line summary the RPM has, not the start of a sentence.
	summary := strings.TrimSpace(rpmInRoot(t, t.TempDir(), "-qp", "--qf", "%{SUMMARY}", pkgs.vmRPM))
	description := debField(t, pkgs.vmDEB, "Description")
	if short, _, _ := strings.Cut(description, "\n"); short != summary {
		t.Errorf("DEB short description %q, want the RPM's summary %q", short, summary)
	}
	// rpm -qi shows the summary above the description: not twice.
	for _, rpm := range []string{pkgs.dom0RPM, pkgs.vmRPM} {
		summary := strings.TrimSpace(rpmInRoot(t, t.TempDir(), "-qp", "--qf", "%{SUMMARY}", rpm))
		description := rpmInRoot(t, t.TempDir(), "-qp", "--qf", "%{DESCRIPTION}", rpm)
		if strings.HasPrefix(description, summary) || !strings.Contains(description, "PedOS secure update") {
			t.Errorf("%s: description %q repeats the summary %q, or is not the package's", filepath.Base(rpm), description, summary)
		}
	}
}

// linkedModules lists the third-party modules the programs among entries link,
// as go list sees them (the build scripts/packages.sh makes: CGO_ENABLED=0).
func linkedModules(t *testing.T, entries []entry) []string {
	t.Helper()
	args := []string{"list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}"}
	for _, e := range entries {
		if name, ok := strings.CutPrefix(e.path, "/usr/lib/pedos/bin/"); ok && e.mode == 0o755 {
			args = append(args, "./cmd/"+name)
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	self, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	var modules []string
	for _, m := range strings.Fields(string(out)) {
		if m != strings.TrimSpace(string(self)) && !slices.Contains(modules, m) {
			modules = append(modules, m)
		}
	}
	if len(modules) == 0 {
		t.Fatal("go list found no third-party module in the programs")
	}
	return modules
}

// goLicence is the licence of the Go toolchain that builds the packages.
func goLicence(t *testing.T) string {
	t.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return readFile(t, filepath.Join(strings.TrimSpace(string(goroot)), "LICENSE"))
}

// checkLicences checks that an installed RPM holds, in /usr/share/licenses/PKG,
// Go's licence and a licence file of every module its programs link.
func checkLicences(t *testing.T, root, pkg string, entries []entry) {
	t.Helper()
	dir := filepath.Join(root, "usr/share/licenses", pkg)
	got, err := os.ReadFile(filepath.Join(dir, "go.LICENSE"))
	if err != nil || string(got) != goLicence(t) {
		t.Errorf("%s: Go's licence is not installed as go.LICENSE (%v)", pkg, err)
	}
	for _, module := range linkedModules(t, entries) {
		if found, _ := filepath.Glob(filepath.Join(dir, strings.ReplaceAll(module, "/", "_")+".*")); len(found) == 0 {
			t.Errorf("%s links %s but installs no licence of it in /usr/share/licenses/%s", pkg, module, pkg)
		}
	}
}

// checkRPMHeader checks what rpm reads before it installs: the zstd payload
// is declared (an rpm without zstd then refuses the package by its
// dependency), and the release is the commit's time and hash, with
// ".dirtyTIME" exactly when the tree has uncommitted changes or files git does
// not know.
func checkRPMHeader(t *testing.T, pkg string) {
	t.Helper()
	requires := rpmInRoot(t, t.TempDir(), "-qp", "--requires", pkg)
	if !strings.Contains(requires, "rpmlib(PayloadIsZstd) <= 5.4.18-1\n") {
		t.Errorf("%s does not require rpmlib(PayloadIsZstd):\n%s", filepath.Base(pkg), requires)
	}
	release := strings.TrimSpace(rpmInRoot(t, t.TempDir(), "-qp", "--qf", "%{RELEASE}", pkg))
	log := exec.Command("git", "-C", repoRoot(), "log", "-1", "--format=%cd.g%h", "--date=format-local:%Y%m%d%H%M%S")
	log.Env = append(os.Environ(), "TZ=UTC")
	commit, err := log.Output()
	if err != nil {
		t.Skipf("no git history to compare the release with: %v", err)
	}
	status, err := exec.Command("git", "-C", repoRoot(), "status", "--porcelain").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.QuoteMeta(strings.TrimSpace(string(commit)))
	if len(status) > 0 {
		want += `\.dirty[0-9]{14}`
	}
	if !regexp.MustCompile("^" + want + "$").MatchString(release) {
		t.Errorf("%s: release %q, want %s (uncommitted changes: %v)", filepath.Base(pkg), release, want, len(status) > 0)
	}
}

// docName is a page of docs/ as the man pages and the pages name it.
var docName = regexp.MustCompile(`[a-z0-9-]+\.md\b`)

// checkDocs checks that every page of docs/ that an installed man page or
// installed page names is installed in /usr/share/doc/PKG, and that the man
// pages name each by that path (a bare name is not findable from man).
func checkDocs(t *testing.T, root, pkg string) {
	t.Helper()
	docDir := "/usr/share/doc/" + pkg + "/"
	reported := map[string]bool{} // one error per page and name
	installed := func(page, name string) bool {
		_, err := os.Stat(filepath.Join(root, docDir, name))
		ok := err == nil || reported[page+" "+name]
		reported[page+" "+name] = true
		return ok
	}
	isDoc := func(name string) bool {
		_, err := os.Stat(filepath.Join(repoRoot(), "docs", name))
		return err == nil
	}
	pages, _ := filepath.Glob(filepath.Join(root, "usr/share/man/man[18]/*.gz"))
	if len(pages) == 0 {
		t.Fatalf("%s installs no man page", pkg)
	}
	for _, page := range pages {
		text := strings.ReplaceAll(gunzip(t, page), "\\-", "-")
		for _, m := range docName.FindAllStringIndex(text, -1) {
			name := text[m[0]:m[1]]
			if !strings.HasSuffix(text[:m[0]], docDir) {
				t.Errorf("%s names %s without its installed path %s", filepath.Base(page), name, docDir+name)
			}
			if !installed(page, name) {
				t.Errorf("%s names %s, which %s does not install", filepath.Base(page), docDir+name, pkg)
			}
		}
	}
	docs, _ := filepath.Glob(filepath.Join(root, docDir, "*.md"))
	for _, doc := range docs {
		for _, name := range docName.FindAllString(readFile(t, doc), -1) {
			if isDoc(name) && !installed(doc, name) {
				t.Errorf("%s%s names %s, which %s does not install", docDir, filepath.Base(doc), name, pkg)
			}
		}
	}
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// TestUnitsAndTmpfiles checks the units with systemd-analyze verify in the
// installed root (any message is a failure: verify exits 0 on unknown keys
// and bad values), checks the hardening each unit must keep, and applies the
// tmpfiles.d entries to a root: they must give the modes the package gives.
func TestUnitsAndTmpfiles(t *testing.T) {
	requireRoot(t, "rpm", "systemd-analyze", "systemd-tmpfiles")
	pkgs := packages(t)
	root := t.TempDir()
	installRPM(t, root, pkgs.dom0RPM)
	installRPM(t, root, pkgs.vmRPM)
	// verify loads the units' dependencies from the root: give it the
	// standard targets.
	unitDir := filepath.Join(root, "usr/lib/systemd/system")
	targets, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
	for _, target := range targets {
		writeFile(t, filepath.Join(unitDir, filepath.Base(target)), readFile(t, target))
	}
	required := map[string][]string{
		"pedos-qrexec-daemon.service": {"PrivateNetwork=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "ProtectHome=yes", "PrivateTmp=yes", "TasksMax=1024"},
		"pedos-qrexec-agent.service":  {"ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes"},
	}
	for unit, settings := range required {
		cmd := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, "/usr/lib/systemd/system/"+unit)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
		text := readFile(t, filepath.Join(unitDir, unit))
		for _, s := range settings {
			if !strings.Contains(text, "\n"+s+"\n") {
				t.Errorf("%s lacks %s", unit, s)
			}
		}
		security := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", "--root="+root, "/usr/lib/systemd/system/"+unit)
		if out, err := security.CombinedOutput(); err == nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			t.Logf("%s: %s", unit, lines[len(lines)-1])
		}
	}

	fresh := t.TempDir()
	for _, conf := range []string{"pedos-updates-dom0.conf", "pedos-updates-vm.conf"} {
		cmd := exec.Command("systemd-tmpfiles", "--root="+fresh, "--create", filepath.Join(root, "usr/lib/tmpfiles.d", conf))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("systemd-tmpfiles %s: %v\n%s", conf, err, out)
		}
	}
	var dirs []entry // the state and log directories; the package alone makes those in /usr
	for _, e := range append(dom0Entries, vmEntries...) {
		if e.mode.IsDir() && strings.HasPrefix(e.path, "/var/") {
			dirs = append(dirs, e)
		}
	}
	checkEntries(t, fresh, append(dirs, dir("/var/lib/PedOS/updates", 0o755)))
}

func extractDEB(t *testing.T, dest, pkg string) {
	t.Helper()
	if out, err := exec.Command("dpkg-deb", "-x", pkg, dest).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
}

func debField(t *testing.T, pkg, field string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "-f", pkg, field).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s: %v", field, err)
	}
	return string(out)
}

func debControlFile(t *testing.T, pkg, name string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-e", pkg, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
	}
	return readFile(t, filepath.Join(dir, name))
}

// inRoot prepares an installed program to run with root as its root
// directory, as on a host: in its own pid namespace with its own /proc (Go
// finds its own executable there), so that killing the returned command's
// process ends everything it started (--kill-child).
func inRoot(t *testing.T, root string, env []string, argv ...string) *exec.Cmd {
	t.Helper()
	mkdirAll(t, filepath.Join(root, "proc"), 0o555)
	mkdirAll(t, filepath.Join(root, "tmp"), fs.ModeSticky|0o777)
	cmd := exec.Command("unshare", append([]string{"--fork", "--pid", "--kill-child", "--mount-proc", "--root=" + root}, argv...)...)
	cmd.Env = append([]string{"PATH=/usr/lib/pedos/bin:/usr/bin:/bin"}, env...)
	return cmd
}

// runInRoot runs an installed program inside root and returns its exit
// status and stderr.
func runInRoot(t *testing.T, root string, env []string, argv ...string) (int, string) {
	t.Helper()
	cmd := inRoot(t, root, env, argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s: %v", argv[0], err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// waitForSocket waits until the daemon has created path; the daemon's log is
// shown if it never does.
func waitForSocket(t *testing.T, path string, log *testbin.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if info, err := os.Stat(path); err == nil && info.Mode()&fs.ModeSocket != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not create %s; its log:\n%s", path, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForLog waits up to 20 s for text in log.
func waitForLog(log *testbin.Buffer, text string) bool {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(log.String(), text) {
			return true
		}
	}
	return strings.Contains(log.String(), text)
}

func equalSorted(got, want []string) bool {
	got, want = append([]string(nil), got...), append([]string(nil), want...)
	sort.Strings(got)
	sort.Strings(want)
	return strings.Join(got, "\n") == strings.Join(want, "\n")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdirAll(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// qubesExcludes are the dom0 package's qrexec pieces, which a PedOS/Qubes
// dom0 does not install (docs/deploy-qubes.md): its own qrexec serves the
// service.
var qubesExcludes = []string{
	"/usr/lib/pedos/bin/qrexec-daemon", "/usr/lib/pedos/bin/qrexec-client",
	"/usr/lib/pedos/bin/pedos-run", "/usr/bin/pedos-run",
	"/usr/lib/systemd/system/pedos-qrexec-daemon.service",
	"/etc/pedos/domains.conf", "/etc/pedos/qrexec-daemon.env",
	"/usr/share/man/man8/qrexec-daemon.8.gz", "/usr/share/man/man1/qrexec-client.1.gz",
	"/usr/share/man/man1/pedos-run.1.gz",
}

// The install of docs/deploy-qubes.md: with %_netsharedpath (there in a
// macro file, here --define: --root reads the host's macro files) rpm leaves
// the excluded paths out, records them as not installed (rpm -V stays
// clean) and installs the rest; an upgrade leaves them out too (a
// one-command --excludepath did not).
func TestQubesStyleInstall(t *testing.T) {
	requireRoot(t, "rpm")
	pkgs := packages(t)
	root := t.TempDir()
	netshared := []string{"--define", "_netsharedpath " + strings.Join(qubesExcludes, ":")}
	for _, args := range [][]string{{"-i"}, {"-U", "--replacepkgs"}} {
		rpmInRoot(t, root, slices.Concat(netshared, args, []string{"--nodeps", "--noscripts", pkgs.dom0RPM})...)
		for _, p := range qubesExcludes {
			if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("rpm %s: %s is installed despite %%_netsharedpath (%v)", args[0], p, err)
			}
		}
	}
	var kept []entry
	for _, e := range dom0Entries {
		if !slices.Contains(qubesExcludes, e.path) {
			kept = append(kept, e)
		}
	}
	checkEntries(t, root, kept)
	if out := rpmInRoot(t, root, "-V", "--nodeps", "pedos-updates-dom0"); out != "" {
		t.Errorf("rpm -V reports changes after an install with excluded paths:\n%s", out)
	}
	checkQubesService(t, root)
	checkQubesPolicy(t, root)
}

// checkQubesService checks the wrapper and sudoers drop-in that
// docs/deploy-qubes.md installs: the system's qrexec runs dom0's services as
// the dom0 user, so the wrapper runs the installed receive through sudo, and
// the drop-in allows exactly that call and keeps QREXEC_REMOTE_DOMAIN (C1).
func checkQubesService(t *testing.T, root string) {
	t.Helper()
	const receive = "/usr/lib/pedos/bin/pedos-receive-updates"
	if _, err := os.Stat(filepath.Join(root, receive)); err != nil {
		t.Errorf("the Qubes-style install lacks the program its service wrapper runs: %v", err)
	}
	if wrapper := readFile(t, filepath.Join(root, qubesWrapper)); !strings.HasPrefix(wrapper, "#!/bin/sh\n") ||
		!strings.HasSuffix(wrapper, "\nexec sudo -n "+receive+" -- \"$@\"\n") {
		t.Errorf("%s does not end by running %s through sudo -n:\n%s", qubesWrapper, receive, wrapper)
	}
	sudoers := readFile(t, filepath.Join(root, qubesSudoers))
	for _, line := range []string{
		"Defaults!" + receive + ` env_keep += "QREXEC_REMOTE_DOMAIN"`,
		"%qubes ALL=(root) NOPASSWD: " + receive + " -- *",
	} {
		if !strings.Contains(sudoers, "\n"+line+"\n") {
			t.Errorf("%s lacks the line %q", qubesSudoers, line)
		}
	}
	if _, err := exec.LookPath("visudo"); err != nil {
		t.Log("visudo is not installed (sudo is not a dependency): the drop-in's syntax is not checked")
		return
	}
	if out, err := exec.Command("visudo", "-cf", filepath.Join(root, qubesSudoers)).CombinedOutput(); err != nil {
		t.Errorf("visudo -cf %s: %v\n%s", qubesSudoers, err, out)
	}
}

// checkQubesPolicy runs the policy check of docs/deploy-qubes.md with the
// installed pedos-policy-eval: the install has no domains.conf, so the check
// names a throwaway domains file, without which the UpdateVM is denied.
func checkQubesPolicy(t *testing.T, root string) {
	t.Helper()
	policyDir := filepath.Join(root, "etc/qubes/policy.d")
	mkdirAll(t, policyDir, 0o755)
	writeFile(t, filepath.Join(policyDir, "50-pedos-updates.policy"),
		readFile(t, filepath.Join(root, "etc/pedos/policy.d/50-pedos-updates.policy")))
	mkdirAll(t, filepath.Join(root, "tmp"), fs.ModeSticky|0o777)
	writeFile(t, filepath.Join(root, "tmp/pedos-domains.conf"), "sys-firewall\nwork\n")
	eval := func(args ...string) (int, string) {
		cmd := inRoot(t, root, nil, append([]string{"/usr/lib/pedos/bin/pedos-policy-eval", "--policy-dir", "/etc/qubes/policy.d"}, args...)...)
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	const call = "PedOS.ReceiveUpdates+0123"
	if code, out := eval("--domains", "/tmp/pedos-domains.conf", "sys-firewall", "dom0", call); code != 0 || out != "allow target=dom0\n" {
		t.Errorf("the UpdateVM with a throwaway domains file: exit %d, %q; want allow target=dom0", code, out)
	}
	if code, out := eval("--domains", "/tmp/pedos-domains.conf", "work", "dom0", call); code != 126 || out != "deny\n" {
		t.Errorf("another domain with a throwaway domains file: exit %d, %q; want deny", code, out)
	}
	if code, _ := eval("sys-firewall", "dom0", call); code != 126 {
		t.Errorf("without --domains the UpdateVM is not in the (excluded) domains.conf, so it must be denied; exit %d", code)
	}
}
