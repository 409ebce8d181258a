package lab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/lab"
	"pedos.dev/updates/internal/testbin"
)

// labPrograms are the programs the lab tests need in the domains (the
// receive service among them: a call of it must start it).
var labPrograms = []string{"pedos-lab", "qrexec-daemon", "qrexec-agent", "qrexec-client-vm", "pedos-run", "qrexec-client", "pedos-receive-updates"}

// startLab brings a lab up in a fresh directory and takes it down at the
// end of the test; it skips, saying why, where a lab cannot run.
func startLab(t *testing.T) *lab.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root (namespaces, veth, overlayfs)")
	}
	var bin string
	for _, name := range labPrograms {
		bin = filepath.Dir(testbin.Path(t, name))
	}
	dir := t.TempDir()
	// Down reads the lab's processes from dir: a lab brought up again
	// there is stopped too.
	forget := testbin.StopOnAbort(func() { _ = lab.Down(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Dir: dir, BinDir: bin})
	if err != nil && strings.Contains(err.Error(), "cannot run a lab") {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
		forget()
	})
	return l
}

// run runs args in a domain and returns stdout, failing the test on a
// non-zero exit.
func run(t *testing.T, l *lab.Lab, domain string, args ...string) string {
	t.Helper()
	out, errOut, code, err := l.Exec(context.Background(), domain, nil, args...)
	if err != nil || code != 0 {
		t.Fatalf("%s: %q: exit %d, %v\n%s%s", domain, args, code, err, out, errOut)
	}
	return string(out)
}

func TestLab(t *testing.T) {
	linksBefore := hostLinks(t)
	// A descriptor of a host directory left open without close-on-exec, as
	// a shell's "exec 9</" leaves one, by whoever starts the lab.
	marker := filepath.Join(t.TempDir(), "leaked-host-directory")
	if err := os.Mkdir(marker, 0o700); err != nil {
		t.Fatal(err)
	}
	leaked, err := unix.Open(marker, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := startLab(t)
	unix.Close(leaked)
	vm := l.UpdateVM()

	t.Run("no descriptor of the host reaches a domain", func(t *testing.T) {
		for _, domain := range []string{lab.Dom0, vm, lab.AppVM} {
			fds := run(t, l, domain, "sh", "-c", "ls -l /proc/1/fd /proc/self/fd 2>/dev/null; true")
			if strings.Contains(fds, "leaked-host-directory") {
				t.Errorf("%s holds the host's directory:\n%s", domain, fds)
			}
		}
	})

	t.Run("dom0 and the other VM have no network", func(t *testing.T) {
		host := hostListener(t)
		for _, domain := range []string{lab.Dom0, lab.AppVM} {
			links := run(t, l, domain, "ip", "-o", "link")
			if n := strings.Count(links, "\n"); n != 1 || !strings.Contains(links, "lo:") || !strings.Contains(links, "state DOWN") {
				t.Errorf("%s's links: want only lo, down; got\n%s", domain, links)
			}
			for _, addr := range []string{"198.18.0.1:80", "127.0.0.1:80", host} {
				script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", strings.Split(addr, ":")[0], strings.Split(addr, ":")[1])
				if _, errOut, code, err := l.Exec(context.Background(), domain, nil, "bash", "-c", script); err != nil || code == 0 {
					t.Errorf("%s connected to %s (exit %d, %v)", domain, addr, code, err)
				} else if !strings.Contains(string(errOut), "unreachable") {
					t.Errorf("%s connecting to %s: %s", domain, addr, errOut)
				}
			}
		}
	})

	t.Run("the UpdateVM reaches the mirror and nothing else", func(t *testing.T) {
		page := run(t, l, vm, "bash", "-c",
			`exec 3<>/dev/tcp/198.18.0.1/80; printf 'GET /repo/current/repodata/repomd.xml HTTP/1.0\r\n\r\n' >&3; cat <&3`)
		if !strings.Contains(page, "200 OK") || !strings.Contains(page, "<repomd") {
			t.Errorf("fetching repomd.xml from the mirror:\n%s", page)
		}
		host := strings.Split(hostListener(t), ":")
		if _, _, code, _ := l.Exec(context.Background(), vm, nil, "bash", "-c", "exec 3<>/dev/tcp/"+host[0]+"/"+host[1]); code == 0 {
			t.Errorf("the UpdateVM reached the host at %s", host)
		}
	})

	t.Run("root in the VMs and the mirror is confined", func(t *testing.T) {
		for _, domain := range []string{vm, lab.AppVM, lab.Mirror} {
			for _, script := range []string{
				"mkdir -p /tmp/m && mount -t tmpfs x /tmp/m",
				"mknod /tmp/disk b 8 0",
				"echo evil > /proc/sys/kernel/hostname",
				"ip link set eth0 down",
				"touch /usr/lib/os-release && test -w /sys/kernel",
			} {
				if _, _, code, _ := l.Exec(context.Background(), domain, nil, "sh", "-c", script); code == 0 {
					t.Errorf("%s: %q succeeded", domain, script)
				}
			}
		}
		// ... while dom0 keeps root's powers (its dnf and sandbox need them).
		run(t, l, lab.Dom0, "sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs x /tmp/m && umount /tmp/m")
	})

	t.Run("each domain sees its own files", func(t *testing.T) {
		conf := run(t, l, lab.Dom0, "cat", "/etc/pedos/updates.conf")
		for _, want := range []string{"updatevm = " + vm, "installroot = /", "repo.pedos-lab.metadata_key = " + lab.PublisherKeyFile} {
			if !strings.Contains(conf, want) {
				t.Errorf("dom0's updates.conf lacks %q:\n%s", want, conf)
			}
		}
		if err := os.WriteFile(filepath.Join(l.Root(vm), "var/lib/PedOS/marker"), []byte("vm"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := run(t, l, vm, "cat", "/var/lib/PedOS/marker"); got != "vm" {
			t.Errorf("the UpdateVM's marker: %q", got)
		}
		for _, path := range []string{"/var/lib/PedOS/marker", lab.ProgramsDir + "/qrexec-agent", l.Dir} {
			if _, _, code, _ := l.Exec(context.Background(), lab.Dom0, nil, "test", "-e", path); code == 0 {
				t.Errorf("dom0 sees %s", path)
			}
		}
		if _, _, code, _ := l.Exec(context.Background(), vm, nil, "test", "-e", "/etc/pedos/updates.conf"); code == 0 {
			t.Error("the UpdateVM sees dom0's updates.conf")
		}
		// The attacker owns the UpdateVM's programs.
		if err := l.ReplaceProgram(vm, "qrexec-client-vm", []byte("#!/bin/sh\necho replaced\n")); err != nil {
			t.Fatal(err)
		}
		if got := run(t, l, vm, "qrexec-client-vm"); got != "replaced\n" {
			t.Errorf("the replaced program printed %q", got)
		}
		original, err := os.ReadFile(testbin.Path(t, "qrexec-client-vm"))
		if err == nil {
			err = l.ReplaceProgram(vm, "qrexec-client-vm", original)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := run(t, l, lab.Dom0, "rpm", "-q", "hello", "libfoo"); got != "hello-1.0-1.noarch\nlibfoo-1.0-1.noarch\n" {
			t.Errorf("dom0's base packages: %q", got)
		}
		if got := run(t, l, lab.Dom0, "rpm", "-q", "gpg-pubkey"); !strings.HasPrefix(got, "gpg-pubkey-") {
			t.Errorf("dom0's rpm database holds no publisher key: %q", got)
		}
	})

	t.Run("exec passes stdio, exit codes and cancellation", func(t *testing.T) {
		out, errOut, code, err := l.Exec(context.Background(), lab.Dom0, strings.NewReader("in\n"), "sh", "-c", "cat; echo err >&2; exit 7")
		if err != nil || code != 7 || string(out) != "in\n" || string(errOut) != "err\n" {
			t.Errorf("got %q %q exit %d, %v", out, errOut, code, err)
		}
		if _, _, code, _ := l.Exec(context.Background(), lab.Dom0, nil, "sh", "-c", "kill -9 $$"); code != 128+9 {
			t.Errorf("killed by SIGKILL: exit %d, want 137", code)
		}
		if _, errOut, code, _ := l.Exec(context.Background(), lab.Dom0, nil, "no-such-program"); code != 127 || len(errOut) == 0 {
			t.Errorf("missing program: exit %d, %q", code, errOut)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, _, _, err := l.Exec(ctx, vm, nil, "sleep", "1000"); err == nil {
			t.Error("a cancelled exec returned no error")
		}
		waitFor(t, "the cancelled sleep to end", func() bool {
			_, _, code, _ := l.Exec(context.Background(), vm, nil, "pgrep", "-x", "sleep")
			return code == 1
		})
	})

	t.Run("qrexec with the shipped policy", func(t *testing.T) {
		if got := run(t, l, lab.Dom0, "pedos-run", vm, "hostname"); got != vm+"\n" {
			t.Errorf("pedos-run %s hostname: %q", vm, got)
		}
		_, _, code, _ := l.Exec(context.Background(), vm, nil, "qrexec-client-vm", "dom0", "PedOS.Other")
		if code != 126 {
			t.Errorf("a call the policy does not allow: exit %d, want 126", code)
		}
		// The policy lets this one through to pedos-receive-updates (which
		// may then refuse it itself: there is no session).
		_, errOut, code, _ := l.Exec(context.Background(), vm, nil, "qrexec-client-vm", "dom0", lab.ReceiveUpdatesService+"+x")
		if code == 125 || strings.Contains(string(errOut), "refused") {
			t.Errorf("%s from the UpdateVM: exit %d, %s; the policy should allow it", lab.ReceiveUpdatesService, code, errOut)
		}
		// From the other VM the same call is refused by the policy, and
		// dom0 reaches that VM too.
		_, errOut, code, _ = l.Exec(context.Background(), lab.AppVM, nil, "qrexec-client-vm", "dom0", lab.ReceiveUpdatesService+"+x")
		if code != 126 || !strings.Contains(string(errOut), "call refused") {
			t.Errorf("%s from %s: exit %d, %s; want 126, refused by the policy", lab.ReceiveUpdatesService, lab.AppVM, code, errOut)
		}
		if got := run(t, l, lab.Dom0, "pedos-run", lab.AppVM, "hostname"); got != lab.AppVM+"\n" {
			t.Errorf("pedos-run %s hostname: %q", lab.AppVM, got)
		}
	})

	// A lab whose qrexec agent died is not up: status says so, and up
	// starts the lab afresh instead of answering "already up".
	t.Run("up after an agent died starts afresh", func(t *testing.T) {
		agent := l.State.Domains[lab.AppVM].Services[0]
		if err := syscall.Kill(agent.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); agent.Alive() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		var out strings.Builder
		if st, err := lab.GetStatus(l.Dir); err != nil || st.Running {
			t.Errorf("status with a dead agent: running %t, %v", st.Running, err)
		} else if st.Print(&out); !strings.Contains(out.String(), ": broken (") {
			t.Errorf("status with a dead agent says:\n%s", out.String())
		}
		again, err := lab.Up(context.Background(), lab.Options{Dir: l.Dir})
		if err != nil {
			t.Fatal(err)
		}
		if again.State.Domains[lab.Dom0].Init == l.State.Domains[lab.Dom0].Init {
			t.Error("up kept the lab whose agent died")
		}
		l = again
		run(t, l, lab.Dom0, "pedos-run", lab.AppVM, "true")
	})

	t.Run("publish then dnf --downloadonly in the UpdateVM fetches exactly the new packages", func(t *testing.T) {
		rev, err := l.Publish(lab.PublishOptions{Specs: []string{"hello-1.1-1 requires=libfoo>=2.0", "libfoo-2.0-1", "unrelated-1-1"}, Snapshot: "second"})
		if err != nil {
			t.Fatal(err)
		}
		if rev.Number != 2 || len(rev.Added) != 3 {
			t.Errorf("revision %+v", rev)
		}
		got := downloadUpdates(t, l)
		if want := []string{"hello-1.1-1.noarch.rpm", "libfoo-2.0-1.noarch.rpm"}; !slices.Equal(got, want) {
			t.Errorf("downloaded %q, want %q", got, want)
		}
		// dom0's strict check (verify.md §1) accepts what the lab signs.
		pkg := filepath.Join(l.Root(vm), lab.UpdateVMInstallRoot, "packages", got[0])
		checkInDom0(t, l, pkg, true)
		for _, path := range []string{"repo/snapshots/second/repodata/repomd.xml.asc", "repo/snapshots/base/packages/hello-1.0-1.noarch.rpm"} {
			if _, err := os.Stat(filepath.Join(l.Dir, "mirror/www", path)); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("publish with another key", func(t *testing.T) {
		rev, err := l.Publish(lab.PublishOptions{Specs: []string{"evil-1-1 post=fail"}, Key: "attacker"})
		if err != nil {
			t.Fatal(err)
		}
		checkInDom0(t, l, filepath.Join(l.Dir, "mirror/www", rev.Path, "packages/evil-1-1.noarch.rpm"), false)
	})

	t.Run("the command line", func(t *testing.T) {
		cli := testbin.Path(t, "pedos-lab")
		cmd := exec.Command(cli, "exec", "--dir", l.Dir, "-e", "X=y", vm, "--", "sh", "-c", "cat; echo $X; exit 3")
		cmd.Stdin = strings.NewReader("in\n")
		out, err := cmd.Output()
		if cmd.ProcessState.ExitCode() != 3 || string(out) != "in\ny\n" {
			t.Errorf("pedos-lab exec: exit %d, %q, %v", cmd.ProcessState.ExitCode(), out, err)
		}
		out, err = exec.Command(cli, "status", "--dir", l.Dir, "--json").Output()
		var st lab.Status
		if err == nil {
			err = json.Unmarshal(out, &st)
		}
		if err != nil || !st.Running || st.Revision != 3 || st.Snapshots["second"] != 2 || len(st.Sockets) != 4 {
			t.Errorf("pedos-lab status --json: %v\n%s", err, out)
		}
	})

	t.Run("publish after current was pointed back at an older revision", func(t *testing.T) {
		current := filepath.Join(l.Dir, "mirror/www/repo/current")
		if err := os.Remove(current); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("revisions/0001", current); err != nil {
			t.Fatal(err)
		}
		rev, err := l.Publish(lab.PublishOptions{Specs: []string{"older-1-1"}})
		if err != nil || rev.Number != 4 {
			t.Fatalf("publish: revision %+v, %v; want number 4, after the highest", rev, err)
		}
	})

	t.Run("up twice is idempotent", func(t *testing.T) {
		again, err := lab.Up(context.Background(), lab.Options{Dir: l.Dir})
		if err != nil {
			t.Fatal(err)
		}
		for name, d := range l.State.Domains {
			if again.State.Domains[name].Init != d.Init {
				t.Errorf("domain %s: init %+v became %+v", name, d.Init, again.State.Domains[name].Init)
			}
		}
	})

	t.Run("down after a crash leaves nothing", func(t *testing.T) {
		st, err := lab.GetStatus(l.Dir)
		if err != nil {
			t.Fatal(err)
		}
		var pids []int
		for _, d := range st.Domains {
			for _, p := range d.Processes {
				pids = append(pids, p.PID)
			}
		}
		// The gpg-agent dnf started in the UpdateVM for repo_gpgcheck is
		// among them: down must end it too (notes/real-tools.md).
		if !slices.ContainsFunc(st.Domains, func(d lab.DomainStatus) bool {
			return slices.ContainsFunc(d.Processes, func(p lab.ProcessInfo) bool { return strings.HasPrefix(p.Command, "gpg-agent") })
		}) {
			t.Error("no gpg-agent in the lab: the test no longer shows that down ends them")
		}
		mirror := l.State.Domains[lab.Mirror].Init.PID
		if err := syscall.Kill(mirror, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// As if `up` had been killed before it recorded dom0's init.
		forgetDomain(t, l.Dir, lab.Dom0)
		if err := l.Down(); err != nil {
			t.Fatal(err)
		}
		// Down returns once nothing is left in the domains' namespaces; a
		// killed process leaves its namespaces before its parent (outside,
		// for one started into a domain) has collected it, so each pid gets
		// a moment to disappear.
		for _, pid := range pids {
			deadline := time.Now().Add(5 * time.Second)
			for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if err := syscall.Kill(pid, 0); err == nil {
				stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				t.Errorf("process %d (%q) of the lab still exists 5 s after down", pid, stat)
			}
		}
		if after := hostLinks(t); !slices.Equal(after, linksBefore) {
			t.Errorf("host links changed: %q -> %q", linksBefore, after)
		}
		// The same directory comes up again, with dom0's packages kept.
		again, err := lab.Up(context.Background(), lab.Options{Dir: l.Dir})
		if err != nil {
			t.Fatal(err)
		}
		if got := run(t, again, lab.Dom0, "rpm", "-q", "hello"); got != "hello-1.0-1.noarch\n" {
			t.Errorf("after down and up, dom0 has %q", got)
		}
	})
}

func TestUpWithoutRootSaysWhy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run pedos-lab as another user")
	}
	// A copy that nobody may run (testbin's directory is private).
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	program := filepath.Join(dir, "pedos-lab")
	copyFile(t, testbin.Path(t, "pedos-lab"), program)
	if err := os.Chmod(program, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(program, "up", "--dir", filepath.Join(dir, "lab"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "missing:") || !strings.Contains(string(out), "root:") {
		t.Errorf("pedos-lab up as nobody: exit %d\n%s", code, out)
	}
}

// downloadUpdates does what the update flow does in the UpdateVM (overview.md
// steps 2-3): dom0's rpm database and repository configuration into the
// fake installroot, then dnf --downloadonly; it returns the files fetched.
func downloadUpdates(t *testing.T, l *lab.Lab) []string {
	vm, root := l.UpdateVM(), lab.UpdateVMInstallRoot
	db := run(t, l, lab.Dom0, "rpmdb", "--exportdb")
	if _, errOut, code, err := l.Exec(context.Background(), vm, strings.NewReader(db), "rpmdb", "--root", root, "--importdb"); err != nil || code != 0 {
		t.Fatalf("importing dom0's database: exit %d, %v: %s", code, err, errOut)
	}
	dom0, fake := l.Root(lab.Dom0), filepath.Join(l.Root(vm), root)
	for _, path := range []string{"etc/yum.repos.d/pedos-lab.repo", "etc/dnf/dnf.conf", lab.PublisherKeyFile} {
		copyFile(t, filepath.Join(dom0, path), filepath.Join(fake, path))
	}
	// dnf reads gpgkey= file URLs outside the installroot.
	copyFile(t, filepath.Join(dom0, lab.PublisherKeyFile), filepath.Join(l.Root(vm), lab.PublisherKeyFile))
	run(t, l, vm, "dnf", "--installroot="+root, "--config="+root+"/etc/dnf/dnf.conf",
		"--setopt=reposdir="+root+"/etc/yum.repos.d", "--setopt=pedos-lab.repo_gpgcheck=1",
		"--releasever=1", "-y", "-q", "--downloadonly", "--downloaddir="+root+"/packages", "upgrade")
	entries, err := os.ReadDir(filepath.Join(fake, "packages"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// checkInDom0 runs the strict rpmkeys check (verify.md §1) in dom0 against
// its rpm database, which holds the publisher key only.
func checkInDom0(t *testing.T, l *lab.Lab, pkg string, wantOK bool) {
	t.Helper()
	copyFile(t, pkg, filepath.Join(l.Root(lab.Dom0), "tmp/check.rpm"))
	out, _, code, err := l.Exec(context.Background(), lab.Dom0, nil, "env", "LC_ALL=C", "rpmkeys", "-K",
		"--define=_pkgverify_level all", "--define=_pkgverify_flags 0x0", "--", "/tmp/check.rpm")
	if err != nil {
		t.Fatal(err)
	}
	ok := code == 0 && string(out) == "/tmp/check.rpm: digests signatures OK\n"
	if ok != wantOK {
		t.Errorf("rpmkeys in dom0 on %s: exit %d %q; want accepted=%v", filepath.Base(pkg), code, out, wantOK)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
	}
	if err == nil {
		err = os.WriteFile(dst, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// hostListener listens on a host address other than loopback and returns it.
func hostListener(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() {
			ln, err := net.Listen("tcp", ip.IP.String()+":0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			return ln.Addr().String()
		}
	}
	t.Skip("the host has no non-loopback IPv4 address")
	return ""
}

// hostLinks lists the host's network devices.
func hostLinks(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, f[1])
		}
	}
	return names
}

// forgetDomain removes a domain from DIR/lab.json.
func forgetDomain(t *testing.T, dir, domain string) {
	t.Helper()
	path := filepath.Join(dir, "lab.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var state map[string]any
	if err := json.Unmarshal(b, &state); err != nil {
		t.Fatal(err)
	}
	delete(state["domains"].(map[string]any), domain)
	if b, err = json.Marshal(state); err == nil {
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
