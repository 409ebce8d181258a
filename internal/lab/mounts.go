package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/qrexec"
)

// Paths inside every domain.
const (
	// ProgramsDir holds the project's programs for a domain (on PATH).
	ProgramsDir = "/usr/lib/pedos/bin"
	// QrexecDir is where a domain finds its qrexec sockets: in dom0 one
	// subdirectory per other domain, elsewhere the domain's own directory.
	QrexecDir = qrexec.SocketDir
	// MirrorDocRoot is what the mirror serves, inside the mirror domain.
	MirrorDocRoot = "/srv/mirror"
)

// ownDirs are the directories of a domain's root that it sees at the same
// path; /usr is special (an overlay on the host's /usr, see mountRoot).
var ownDirs = []string{"etc", "var", "root", "tmp"}

// mountRoot builds the domain's file system view in the current (fresh,
// private) mount namespace and makes it the root: a tmpfs holding the
// domain's own directories bound in, /usr as an overlay whose lower layer is
// the host's /usr read-only and whose upper layer is the domain's own (so
// dnf in dom0 installs for real without touching the host), minimal /dev,
// fresh /proc and /sys, and what the role needs (qrexec sockets, mirror
// files). Afterwards nothing of the host is reachable but /usr read-only.
func mountRoot(l Layout, domain string, role Role) error {
	d := l.Domain(domain)
	newRoot := d.mountPoint()
	steps := []struct {
		what string
		do   func() error
	}{
		{"make mounts private", func() error {
			err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
			if errors.Is(err, unix.EINVAL) {
				// A booted machine's / always is one; a chroot's may not be.
				return fmt.Errorf("%w (/ is not a mount point: in a chroot, bind-mount its root onto itself first)", err)
			}
			return err
		}},
		{"tmpfs root", func() error {
			return unix.Mount("tmpfs", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16m")
		}},
		{"skeleton", func() error { return makeSkeleton(newRoot) }},
		{"/usr overlay", func() error {
			opts := fmt.Sprintf("lowerdir=/usr,upperdir=%s,workdir=%s", d.Path("usr"), d.workDir())
			if err := unix.Mount("overlay", filepath.Join(newRoot, "usr"), "overlay", 0, opts); err != nil {
				return fmt.Errorf("%w (the lab directory must be on a file system overlayfs accepts as upper layer, such as ext4, xfs, btrfs or tmpfs; not overlayfs itself)", err)
			}
			return nil
		}},
		// The programs are bound over the overlay so that the host (a test
		// playing the attacker who owns the UpdateVM) may replace them in
		// DIR while the domain runs; overlayfs forbids changing its layers.
		{ProgramsDir, func() error { return bind(d.Path(ProgramsDir), filepath.Join(newRoot, ProgramsDir), false) }},
		{"own directories", func() error {
			for _, dir := range ownDirs {
				if err := bind(d.Path(dir), filepath.Join(newRoot, dir), false); err != nil {
					return err
				}
			}
			return nil
		}},
		{"/proc", func() error {
			return unix.Mount("proc", filepath.Join(newRoot, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		}},
		{"/sys", func() error {
			return unix.Mount("sysfs", filepath.Join(newRoot, "sys"), "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		}},
		{"/dev", func() error { return mountDev(filepath.Join(newRoot, "dev")) }},
		{"/run", func() error {
			return unix.Mount("tmpfs", filepath.Join(newRoot, "run"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=8m")
		}},
		{"role", func() error { return mountForRole(l, domain, role, newRoot) }},
		{"/proc/sys", func() error {
			if role == RoleDom0 {
				return nil
			}
			sys := filepath.Join(newRoot, "proc", "sys")
			return bind(sys, sys, true)
		}},
		{"pivot_root", func() error { return pivot(newRoot) }},
		{"hostname", func() error { return unix.Sethostname([]byte(domain)) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("domain %s: %s: %w", domain, s.what, err)
		}
	}
	return nil
}

// makeSkeleton creates the mount points and the host's top-level symlinks
// into /usr (bin -> usr/bin on a merged-/usr system such as Debian 12).
func makeSkeleton(root string) error {
	for _, dir := range append([]string{"usr", "proc", "sys", "dev", "run", "srv", ".oldroot"}, ownDirs...) {
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir("/")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(filepath.Join("/", e.Name()))
		if err == nil && (strings.HasPrefix(target, "usr/") || strings.HasPrefix(target, "/usr/")) {
			if err := os.Symlink(target, filepath.Join(root, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// mountDev gives the domain the harmless character devices only: no disks,
// no host terminals.
func mountDev(dev string) error {
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return err
	}
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		f, err := os.Create(filepath.Join(dev, name))
		if err != nil {
			return err
		}
		f.Close()
		if err := bind("/dev/"+name, filepath.Join(dev, name), false); err != nil {
			return err
		}
	}
	links := map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	return unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=16m")
}

// mountForRole makes the qrexec sockets and the mirror's files visible where
// the role needs them. dom0 sees every domain's socket directory (its daemon
// serves them all); another domain sees only its own (qrexec.md: "a
// directory only dom0 and that domain can reach").
func mountForRole(l Layout, domain string, role Role, root string) error {
	switch role {
	case RoleDom0, RoleUpdateVM, RoleAppVM:
		src := l.qrexecDir()
		if role != RoleDom0 {
			src = filepath.Join(src, domain)
		}
		dst := filepath.Join(root, QrexecDir)
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		return bind(src, dst, false)
	case RoleMirror:
		dst := filepath.Join(root, MirrorDocRoot)
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		return bind(l.mirrorWWW(), dst, true)
	}
	return fmt.Errorf("unknown role %q", role)
}

func bind(src, dst string, readOnly bool) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	if !readOnly {
		return nil
	}
	return unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "")
}

// pivot makes newRoot the root of this mount namespace and detaches the old
// one, so that no path leads back to the host's files.
func pivot(newRoot string) error {
	old := filepath.Join(newRoot, ".oldroot")
	if err := unix.PivotRoot(newRoot, old); err != nil {
		return err
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount("/.oldroot", unix.MNT_DETACH); err != nil {
		return err
	}
	return os.Remove("/.oldroot")
}

// untrustedDomainDroppedCaps are taken from the capability bounding set of
// the UpdateVM and the mirror, which an attacker may own (threats.md): with
// them gone, root there cannot mount, make device nodes, load modules,
// reconfigure its network, trace or reach raw I/O, so it stays inside the
// view mountRoot built (together with the read-only /sys and /proc/sys).
// It keeps what dnf, rpm and the qrexec agent need (file ownership, setuid
// to run a command as another user, chroot, signals). This is container-grade
// confinement for a test lab, not a VM boundary.
var untrustedDomainDroppedCaps = []uintptr{
	unix.CAP_SYS_ADMIN, unix.CAP_SYS_MODULE, unix.CAP_SYS_RAWIO, unix.CAP_MKNOD,
	unix.CAP_SYS_PTRACE, unix.CAP_SYS_BOOT, unix.CAP_SYS_TIME, unix.CAP_NET_ADMIN,
	unix.CAP_BPF, unix.CAP_PERFMON, unix.CAP_SYSLOG, unix.CAP_MAC_ADMIN, unix.CAP_MAC_OVERRIDE,
	unix.CAP_AUDIT_CONTROL, unix.CAP_LINUX_IMMUTABLE, unix.CAP_SYS_RESOURCE, unix.CAP_WAKE_ALARM,
	unix.CAP_BLOCK_SUSPEND, unix.CAP_SYS_PACCT, unix.CAP_SYS_TTY_CONFIG, unix.CAP_LEASE,
	unix.CAP_CHECKPOINT_RESTORE,
}

// confinedThread returns a function that starts processes from one OS
// thread whose capability bounding set lacks untrustedDomainDroppedCaps
// (for dom0: with all of them). The bounding set belongs to a thread and a
// child inherits it from the thread that forks it, so every start goes
// through this one locked thread.
func confinedThread(role Role) (func(path string, argv []string, attr *os.ProcAttr) (*os.Process, error), error) {
	type start struct {
		path  string
		argv  []string
		attr  *os.ProcAttr
		reply chan startResult
	}
	starts := make(chan start)
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // for good: this thread is never reused
		if role != RoleDom0 {
			for _, c := range untrustedDomainDroppedCaps {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
					ready <- fmt.Errorf("dropping capability %d: %w", c, err)
					return
				}
			}
		}
		close(ready)
		for s := range starts {
			p, err := os.StartProcess(s.path, s.argv, s.attr)
			s.reply <- startResult{p, err}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return func(path string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
		reply := make(chan startResult)
		starts <- start{path, argv, attr, reply}
		r := <-reply
		return r.p, r.err
	}, nil
}

type startResult struct {
	p   *os.Process
	err error
}
