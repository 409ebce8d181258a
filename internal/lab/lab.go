// Package lab runs PedOS domains on one Linux host (issue 5): dom0 with no
// network at all, an UpdateVM linked by a veth pair to a mirror domain that
// serves a signed package repository over HTTP, an ordinary VM ("work", no
// network: the attack suite's rogue caller), and the project's qrexec
// between dom0 and the two VMs. Each domain is a long-lived init process
// (pedos-lab re-executed as "domain-init") in its own mount, network, pid,
// UTS and IPC namespaces, whose root is built from the domain's directory in
// the lab directory plus a read-only view of the host's /usr (see mounts.go).
// Tests use Up, Exec, Publish and Down; cmd/pedos-lab is a thin CLI over
// the same functions. docs/lab.md describes the paths and commands.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/qrexec/policy"
)

// Role is what a domain is for; it decides its network and files.
type Role string

const (
	RoleDom0     Role = "dom0"
	RoleUpdateVM Role = "updatevm"
	RoleMirror   Role = "mirror"
	// RoleAppVM is an ordinary VM with no network and a qrexec agent:
	// in the attack suite, the rogue VM that calls dom0's services (C1, L2).
	RoleAppVM Role = "appvm"
)

// Fixed domain names and addresses. The veth pair uses the benchmark range
// 198.18.0.0/15 (RFC 2544), which no real network near the host uses.
const (
	Dom0            = "dom0"
	Mirror          = "mirror"
	AppVM           = "work"
	DefaultUpdateVM = "sys-firewall"
	mirrorAddr      = "198.18.0.1"
	updateVMAddr    = "198.18.0.2"
	linkPrefix      = "/30"
)

// Options says how to bring a lab up.
type Options struct {
	// Dir is the lab directory (created if missing, reused if present).
	Dir string
	// UpdateVM is the UpdateVM's name (default sys-firewall).
	UpdateVM string
	// BinDir holds the project's built programs, copied into the domains
	// (default: $PEDOS_BIN, else the directory the lab used last time, else
	// that of the running program).
	// It must hold pedos-lab itself, which runs each domain's init, unless
	// the running program is pedos-lab.
	BinDir string
	// Base are the package specs published as the mirror's first revision
	// and installed in dom0 when the lab is first made (default DefaultBase).
	Base []string
	// Log receives progress lines (default: discarded).
	Log io.Writer
}

// DefaultBase is dom0's initial package set.
var DefaultBase = []string{"libfoo-1.0-1", "hello-1.0-1 requires=libfoo>=1.0"}

// Lab is a running lab.
type Lab struct {
	Layout
	State *State
}

// UpdateVM is the name of the lab's UpdateVM.
func (l *Lab) UpdateVM() string { return l.State.UpdateVM }

// MirrorURL is the base URL of the mirror as the UpdateVM reaches it.
func (l *Lab) MirrorURL() string { return "http://" + l.State.MirrorAddr + "/" }

// Root is the host directory of a domain's own files (what it sees at /etc,
// /var, /root, /tmp and, above the host's files, /usr).
func (l *Lab) Root(domain string) string { return l.Domain(domain).Root() }

// ProgramPath is the host path of the program a domain runs as
// ProgramsDir/name.
func (l *Lab) ProgramPath(domain, name string) string {
	return l.Domain(domain).Path(filepath.Join(ProgramsDir, name))
}

// ReplaceProgram puts content in place of a domain's program (a new file,
// renamed over the old one), as the attacker who owns the UpdateVM may:
// the domain runs it from its next start.
func (l *Lab) ReplaceProgram(domain, name string, content []byte) error {
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("program name %q: want the name of a file in %s, not a path or a dot file", name, ProgramsDir)
	}
	path := l.ProgramPath(domain, name)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Open returns the lab in dir as lab.json records it, to run commands in
// its domains.
func Open(dir string) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s, err := loadState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, notALab(dir)
	}
	if err != nil {
		return nil, err
	}
	return &Lab{Layout: Layout{Dir: dir}, State: s}, nil
}

// Up brings the lab in opts.Dir up, or returns it as it is if every domain
// is already running. On failure it stops whatever it started.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	dir, err := opts.check()
	if err != nil {
		return nil, err
	}
	if err := checkHost(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", args...)
		}
	}
	return (&Lab{Layout: Layout{Dir: dir}}).upLocked(ctx, opts, logf)
}

// check checks what opts asks for, so that a mistake in it is an
// ArgumentError, found before anything is made; it returns the lab
// directory as an absolute path.
func (opts Options) check() (string, error) {
	if opts.UpdateVM != "" && (!policy.ValidDomainName(opts.UpdateVM) || slices.Contains([]string{Dom0, Mirror, AppVM}, opts.UpdateVM)) {
		return "", &ArgumentError{Err: fmt.Errorf("--updatevm %q: %s, and not %s, %s or %s", opts.UpdateVM, policy.ValidDomainNameRule, Dom0, Mirror, AppVM)}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return "", err
	}
	// The directory goes into overlayfs mount options, where these
	// characters separate options and layers.
	if strings.ContainsAny(dir, ",:\\ \n") {
		return "", &ArgumentError{Err: fmt.Errorf("lab directory %q: must not contain ',', ':', '\\' or spaces", dir)}
	}
	return dir, nil
}

// upLocked brings the lab up under its directory's lock: the lab recorded
// there if every domain of it runs, else a fresh start, keeping the
// recorded UpdateVM and program directory.
func (l *Lab) upLocked(ctx context.Context, opts Options, logf func(string, ...any)) (*Lab, error) {
	old, err := loadState(l.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if opts.UpdateVM != "" && opts.UpdateVM != old.UpdateVM {
			return nil, fmt.Errorf("lab %s was made with UpdateVM %q, not %q", l.Dir, old.UpdateVM, opts.UpdateVM)
		}
		opts.UpdateVM = old.UpdateVM
		if opts.BinDir == "" && os.Getenv("PEDOS_BIN") == "" {
			opts.BinDir = old.BinDir
		}
		if old.running() {
			logf("lab %s is already up", l.Dir)
			l.State = old
			return l, nil
		}
		// A half-running lab (a domain crashed): start afresh.
		if err := l.downLocked(old); err != nil {
			return nil, err
		}
	}
	if opts.UpdateVM == "" {
		opts.UpdateVM = DefaultUpdateVM
	}
	if len(opts.Base) == 0 {
		opts.Base = DefaultBase
	}
	bin, err := binDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	l.State = &State{Version: 1, UpdateVM: opts.UpdateVM, BinDir: bin, Domains: map[string]*DomainState{},
		MirrorAddr: mirrorAddr, UpdateVMAddr: updateVMAddr}
	if err := l.start(ctx, opts.Base, bin, logf); err != nil {
		if derr := l.downLocked(l.State); derr != nil {
			err = fmt.Errorf("%w (and stopping the lab: %v)", err, derr)
		}
		return nil, err
	}
	return l, nil
}

// start provisions the domains' files, publishes the base packages on
// first use, starts the domains, links the UpdateVM to the mirror, readies
// their rpm databases and starts the services, recording each in lab.json.
func (l *Lab) start(ctx context.Context, base []string, bin string, logf func(string, ...any)) error {
	logf("preparing %s", l.Dir)
	if err := l.provision(bin); err != nil {
		return err
	}
	if err := l.publishBase(base, logf); err != nil {
		return err
	}
	initProgram, err := initProgram(bin)
	if err != nil {
		return err
	}
	for _, dom := range l.domains() {
		logf("starting domain %s", dom.name)
		ds, err := l.startDomain(dom.name, dom.role, initProgram)
		if ds != nil {
			l.State.Domains[dom.name] = ds
			if serr := l.State.save(l.Dir); err == nil {
				err = serr
			}
		}
		if err != nil {
			return err
		}
	}
	logf("linking %s and %s", l.UpdateVM(), Mirror)
	if err := l.link(ctx); err != nil {
		return err
	}
	if err := l.initDomains(ctx, base, logf); err != nil {
		return err
	}
	logf("starting services")
	if err := l.startServices(); err != nil {
		return err
	}
	return l.State.save(l.Dir)
}

type domainSpec struct {
	name string
	role Role
}

func (l *Lab) domains() []domainSpec {
	return []domainSpec{{Mirror, RoleMirror}, {l.UpdateVM(), RoleUpdateVM}, {AppVM, RoleAppVM}, {Dom0, RoleDom0}}
}

func (l *Lab) domainNames() []string {
	var names []string
	for _, d := range l.domains() {
		names = append(names, d.name)
	}
	return names
}

// checkHost says, all at once, what this machine lacks for a lab.
func checkHost() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root: pedos-lab runs only as root (run it with sudo): it makes its namespaces, veth pair and overlay mounts in the host's namespaces, and does not set up a user namespace of its own")
	}
	for _, ns := range []string{"mnt", "net", "pid", "uts", "ipc"} {
		if _, err := os.Stat("/proc/self/ns/" + ns); err != nil {
			missing = append(missing, "kernel support for "+ns+" namespaces")
		}
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\toverlay\n") {
		missing = append(missing, "overlayfs (modprobe overlay)")
	}
	for _, tool := range []string{"ip", "nsenter", "rpm", "rpmkeys", "rpmdb", "dnf", "createrepo_c"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" (scripts/install-deps.sh installs it)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("this machine cannot run a lab; missing:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

// binDir finds the project's programs.
func binDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("PEDOS_BIN")
	}
	if dir == "" {
		self, err := os.Executable()
		if err != nil {
			return "", err
		}
		dir = filepath.Dir(self)
	}
	return filepath.Abs(dir)
}

// initProgram is the pedos-lab executable that runs the domains' inits.
func initProgram(bin string) (string, error) {
	if self, err := os.Executable(); err == nil && filepath.Base(self) == "pedos-lab" {
		return self, nil
	}
	p := filepath.Join(bin, "pedos-lab")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the domains' init is pedos-lab, not found in %s (make build, or set --bin/PEDOS_BIN)", bin)
	}
	return p, nil
}

// notALab is the error for a directory without a lab's record, whether it
// exists or not.
func notALab(dir string) error {
	return fmt.Errorf("%s is not a lab directory (no %s: pedos-lab up first)", dir, stateFile)
}

// requireLab checks that dir holds a lab's record. Commands on an existing
// lab call it before lockDir, which would create DIR/.lock: a mistyped
// --dir is left as it is.
func requireLab(dir string) error {
	_, err := os.Stat(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return notALab(dir)
	}
	return err
}

// lockDir serialises up and down on one lab directory.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// startDomain starts a domain's init in fresh namespaces and waits until it
// has built the domain's root and listens on its control socket.
func (l *Lab) startDomain(name string, role Role, program string) (*DomainState, error) {
	logFile, err := os.OpenFile(l.logFile(name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusR.Close()
	cmd := exec.Command(program, InitCommand, "--dir", l.Dir, "--domain", name, "--role", string(role))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid: true,
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWPID |
			syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
	}
	err = cmd.Start()
	statusW.Close()
	if err != nil {
		return nil, fmt.Errorf("domain %s: starting its init: %w", name, err)
	}
	go func() { _ = cmd.Wait() }() // reap it whenever it ends
	ds, err := describeDomain(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("domain %s: %w", name, err)
	}
	status, err := readStatus(statusR, 30*time.Second)
	if err != nil {
		return ds, fmt.Errorf("domain %s: %w (see %s)", name, err, l.logFile(name))
	}
	if status != "ok" {
		return ds, fmt.Errorf("domain %s: %s", name, status)
	}
	return ds, nil
}

// readStatus reads the init's one status line.
func readStatus(r *os.File, timeout time.Duration) (string, error) {
	_ = r.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", fmt.Errorf("waiting for its init: %w", err)
	}
	status := strings.TrimSpace(string(b))
	if status == "" {
		return "", errors.New("its init ended before it was ready")
	}
	return status, nil
}
