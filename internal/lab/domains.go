package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// link joins the UpdateVM and the mirror with a veth pair created directly
// in their network namespaces (named eth0 on both sides), so the host's
// namespace never holds a lab device, even if `up` is killed midway; the
// pair disappears with either domain. dom0 gets nothing: its loopback stays
// down and it has no other device. The addresses are set from the host (in
// the domains' network namespaces only), because the two domains
// themselves have no CAP_NET_ADMIN (see confine).
func (l *Lab) link(ctx context.Context) error {
	vm, mirror := l.State.Domains[l.UpdateVM()].Init.PID, l.State.Domains[Mirror].Init.PID
	out, err := runHost(ctx, "ip", "link", "add", "eth0", "netns", strconv.Itoa(vm),
		"type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(mirror))
	if err != nil {
		return fmt.Errorf("creating the veth pair between %s and %s: %w\n%s", l.UpdateVM(), Mirror, err, out)
	}
	for _, end := range []struct {
		domain string
		pid    int
		addr   string
	}{{l.UpdateVM(), vm, updateVMAddr}, {Mirror, mirror, mirrorAddr}} {
		for _, args := range [][]string{
			{"addr", "add", end.addr + linkPrefix, "dev", "eth0"},
			{"link", "set", "eth0", "up"},
			{"link", "set", "lo", "up"},
		} {
			netns := fmt.Sprintf("--net=/proc/%d/ns/net", end.pid)
			if out, err := runHost(ctx, "nsenter", append([]string{netns, "ip"}, args...)...); err != nil {
				return fmt.Errorf("domain %s: ip %s: %w\n%s", end.domain, strings.Join(args, " "), err, out)
			}
		}
	}
	return nil
}

// initDomains gives each domain its rpm database and dom0 its publisher key
// and, on first use, its base packages.
func (l *Lab) initDomains(ctx context.Context, base []string, logf func(string, ...any)) error {
	for _, dom := range []string{Dom0, l.UpdateVM()} {
		if _, err := os.Stat(l.Domain(dom).Path("/var/lib/rpm/rpmdb.sqlite")); err == nil {
			continue
		}
		if err := l.mustRun(ctx, dom, "rpmdb", "--initdb"); err != nil {
			return err
		}
	}
	// rpmkeys --import of a key already there is a no-op.
	if err := l.mustRun(ctx, Dom0, "rpmkeys", "--import", PublisherKeyFile); err != nil {
		return err
	}
	names := make([]string, len(base))
	for i, spec := range base {
		p, err := parseSpecs([]string{spec})
		if err != nil {
			return err
		}
		names[i] = p[0].pkg.Name
	}
	if _, _, code, err := l.Exec(ctx, Dom0, nil, append([]string{"rpm", "-q", "--quiet"}, names...)...); err != nil || code == 0 {
		return err
	}
	logf("installing %s in dom0 from the mirror's first revision", strings.Join(names, " "))
	return l.bootstrapDom0(ctx, names)
}

// bootstrapDom0 installs dom0's base packages with real dnf from a copy of
// the mirror's first revision (a file:// repository inside dom0, removed
// afterwards). This is the lab's bootstrap, not the update path: dom0 has
// no network and never reads the mirror.
func (l *Lab) bootstrapDom0(ctx context.Context, names []string) error {
	const inside = "/var/tmp/pedos-lab-bootstrap"
	d := l.Domain(Dom0)
	host := d.Path(inside)
	defer os.RemoveAll(host)
	if err := os.RemoveAll(host); err != nil {
		return err
	}
	if err := os.MkdirAll(host, 0o755); err != nil {
		return err
	}
	first := filepath.Join(l.repoDir(), revisionsDir, revisionName(1))
	if err := copyTree(first, filepath.Join(host, "repo")); err != nil {
		return fmt.Errorf("copying the mirror's first revision into dom0: %w", err)
	}
	repo := "[lab-bootstrap]\nname=lab bootstrap\nbaseurl=file://" + inside + "/repo\ngpgcheck=1\nrepo_gpgcheck=0\n"
	if err := writeFile(filepath.Join(host, "repos.d", "bootstrap.repo"), repo); err != nil {
		return err
	}
	args := []string{"dnf", "--config=/etc/dnf/dnf.conf", "--setopt=reposdir=" + inside + "/repos.d",
		"--setopt=cachedir=" + inside + "/cache", "--releasever=" + releaseVer, "-y", "-q", "install"}
	return l.mustRun(ctx, Dom0, append(args, names...)...)
}

// service is a long-lived program of a domain and the qrexec socket it
// makes ready (relative to DIR/qrexec).
type service struct{ domain, name, socket string }

// services are the lab's qrexec services. All use their default paths,
// which are the lab's (QrexecDir, /etc/pedos, /etc/pedos-rpc).
func (l *Lab) services() []service {
	vm := l.UpdateVM()
	return []service{
		{vm, "qrexec-agent", filepath.Join(vm, "agent.sock")},
		{AppVM, "qrexec-agent", filepath.Join(AppVM, "agent.sock")},
		{Dom0, "qrexec-daemon", filepath.Join(vm, "daemon.sock")},
	}
}

// startServices starts the mirror's HTTP server and the qrexec daemon and
// agent, and waits until their sockets exist.
func (l *Lab) startServices() error {
	if _, err := control(l.Domain(Mirror), controlRequest{Op: opMirror, Addr: mirrorAddr + ":80"}); err != nil {
		return err
	}
	for _, svc := range l.services() {
		if _, err := os.Stat(l.Domain(svc.domain).Path(filepath.Join(ProgramsDir, svc.name))); err != nil {
			return fmt.Errorf("domain %s: %s is not built (make build, or --bin): %w", svc.domain, svc.name, err)
		}
		// A socket left by the service's previous run (an agent that was
		// killed) would pass for the new one before it listens.
		socket := filepath.Join(l.qrexecDir(), svc.socket)
		if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("domain %s: removing the old %s: %w", svc.domain, socket, err)
		}
		rep, err := control(l.Domain(svc.domain), controlRequest{
			Op: opService, Name: svc.name, Argv: []string{svc.name}, Env: domainEnv(svc.domain, nil),
		})
		if err != nil {
			return err
		}
		ds := l.State.Domains[svc.domain]
		proc, err := identify(svc.name, hostPID(ds.Init.PID, rep.PID))
		if err != nil {
			proc = Process{Name: svc.name} // it ended already; waitForSocket says so
		}
		ds.Services = append(ds.Services, proc)
		if err := waitForSocket(socket, proc, 10*time.Second); err != nil {
			return fmt.Errorf("domain %s: %s: %w (see %s)", svc.domain, svc.name, err,
				l.Domain(svc.domain).Path(serviceLog(svc.name)))
		}
	}
	return nil
}

// hostPID maps a pid in a domain's pid namespace to the host's, among the
// children of the domain's init (of any of its threads: each has its own
// list).
func hostPID(initPID, nsPID int) int {
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", initPID))
	var children []string
	for _, list := range lists {
		b, _ := os.ReadFile(list)
		children = append(children, strings.Fields(string(b))...)
	}
	for _, f := range children {
		pid, _ := strconv.Atoi(f)
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(status), "\n") {
			if ns, ok := strings.CutPrefix(line, "NSpid:"); ok {
				if f := strings.Fields(ns); len(f) > 0 && f[len(f)-1] == strconv.Itoa(nsPID) {
					return pid
				}
			}
		}
	}
	return 0
}

// waitForSocket waits until a service has made its socket.
func waitForSocket(path string, service Process, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		_, err := os.Stat(path)
		switch {
		case err == nil:
			return nil
		case !service.Alive():
			return errors.New("it ended")
		case !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline):
			return fmt.Errorf("%s did not appear: %w", path, err)
		}
	}
}
