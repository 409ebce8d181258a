// Package sandbox confines the process that parses untrusted bytes in dom0: the unpacker calls
// Confine once, before it reads the stream, and from then on it can write only below its
// staging directory, cannot create sockets or run programs, and no longer runs as root
// (qfile.md, "Receiver rules", last bullet).
//
// Every mechanism covers every thread of the Go runtime. Per-thread kernel state
// (no_new_privs, the Landlock domain) is set with syscall.AllThreadsSyscall, which works only
// in binaries built with CGO_ENABLED=0; seccomp uses SECCOMP_FILTER_FLAG_TSYNC; Go's
// syscall.Setuid family already changes every thread. Threads started later inherit all of it.
package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Policy says what the confined process may still do.
type Policy struct {
	WritableDir string // the only directory tree it may read or write (Landlock)
	User        string // user name or numeric uid to switch to when root; "" = no switch
	MaxFileSize int64  // RLIMIT_FSIZE in bytes; 0 = leave as is
}

// errUnavailable marks a mechanism the running system does not offer: Confine turns it into a
// warning and goes on with the others, never silently (issue 2, the sandbox bullet).
var errUnavailable = errors.New("sandbox: not in force")

// maxOpenFiles caps RLIMIT_NOFILE: the unpacker holds a handful of descriptors at a time, so a
// descriptor leak driven by a hostile stream stops early instead of exhausting dom0's table.
const maxOpenFiles = 128

// maxDataBytes caps RLIMIT_DATA, the process's private writable memory: the unpacker needs about
// 40 MiB of it (most of it the Go runtime's first heap arena, reserved rather than used), so a
// confined process that an exploit made allocate without end fails at a quarter GiB instead of
// pressing on dom0's memory. The runtime's PROT_NONE reservations do not count.
const maxDataBytes = 256 << 20

// passwdPath is where user names are resolved; tests resolve against testdata instead.
const passwdPath = "/etc/passwd"

// Confine applies the policy to the whole calling process, irrevocably: inherited descriptors
// closed, no-new-privs, Landlock, rlimits, uid/gid switch, then a seccomp filter that forbids
// socket creation and execve.
// Where the kernel lacks Landlock or seccomp it returns a warning naming the mechanism (the
// caller prints each once on stderr); other failures are errors, after which the caller must
// exit: the process may be half confined.
func Confine(p Policy) (warnings []string, err error) {
	if p.WritableDir == "" {
		return nil, errors.New("sandbox: the policy names no writable directory")
	}
	if err := closeInherited(); err != nil {
		return nil, err
	}
	// Resolve the user first: once Landlock is in force /etc/passwd can no longer be read.
	var target *account
	if p.User != "" {
		resolved, err := resolveUser(p.User, passwdPath)
		if err != nil {
			return nil, err
		}
		target = &resolved
	}
	// no_new_privs: Landlock and seccomp demand it of a caller without CAP_SYS_ADMIN, and no
	// later execve (were one possible) could gain privileges through setuid bits or file caps.
	if _, _, errno := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		hint := ""
		if errno == unix.ENOTSUP {
			hint = " (AllThreadsSyscall refuses cgo binaries: build with CGO_ENABLED=0)"
		}
		return nil, fmt.Errorf("sandbox: setting no_new_privs on every thread: %w%s", errno, hint)
	}
	// Landlock before the uid switch: the rules need handles on directories that the target
	// user may not be allowed to open.
	if err := warnIfUnavailable(restrictFilesystem(p.WritableDir, &warnings), &warnings); err != nil {
		return warnings, err
	}
	// Rlimits belong to the process (one call each covers every thread) and are only lowered.
	if err := limitResources(p.MaxFileSize); err != nil {
		return warnings, err
	}
	if err := switchUser(target); err != nil {
		return warnings, err
	}
	// Seccomp last: the steps above use system calls it does not need to allow.
	return warnings, warnIfUnavailable(forbidSocketsAndExec(), &warnings)
}

// closeInherited closes the descriptors above stderr that a parent let through exec: those
// without FD_CLOEXEC, which every descriptor this process opens has (the Go runtime's too).
// Landlock and seccomp govern what is opened after them, not a file or socket a caller leaked.
func closeInherited() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("sandbox: listing the inherited descriptors: %w", err)
	}
	for _, entry := range entries {
		fd, err := strconv.Atoi(entry.Name())
		if err != nil || fd <= 2 {
			continue
		}
		// ReadDir's own descriptor, closed by now, answers EBADF.
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
	return nil
}

// warnIfUnavailable turns the absence of a mechanism the kernel may lack into a warning (nil
// error); a mechanism that failed stays an error.
func warnIfUnavailable(err error, warnings *[]string) error {
	if errors.Is(err, errUnavailable) {
		*warnings = append(*warnings, err.Error())
		return nil
	}
	return err
}

// limitResources lowers the soft and hard limits: no core dumps (they would hold half-checked
// data from the stream), few descriptors, bounded memory, and, when asked, a file size cap (writes past it fail
// with EFBIG; the Go runtime ignores SIGXFSZ).
func limitResources(maxFileSize int64) error {
	type rlimit struct {
		resource int
		name     string
		max      uint64
	}
	limits := []rlimit{
		{unix.RLIMIT_CORE, "RLIMIT_CORE", 0},
		{unix.RLIMIT_NOFILE, "RLIMIT_NOFILE", maxOpenFiles},
		{unix.RLIMIT_DATA, "RLIMIT_DATA", maxDataBytes},
	}
	if maxFileSize > 0 {
		limits = append(limits, rlimit{unix.RLIMIT_FSIZE, "RLIMIT_FSIZE", uint64(maxFileSize)})
	}
	for _, l := range limits {
		var current syscall.Rlimit
		if err := syscall.Getrlimit(l.resource, &current); err != nil {
			return fmt.Errorf("sandbox: reading %s: %w", l.name, err)
		}
		// Never raise a limit the caller had set lower.
		limit := min(l.max, current.Max)
		if err := syscall.Setrlimit(l.resource, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
			return fmt.Errorf("sandbox: setting %s to %d: %w", l.name, limit, err)
		}
	}
	return nil
}

// account is the identity Confine switches to.
type account struct{ uid, gid int }

// switchUser drops root for target (nil: no switch asked). A process that already runs as the
// target user keeps its effective ids and loses the rest of root's rights (dropRootRights); any
// other unprivileged process cannot switch, which is an error.
func switchUser(target *account) error {
	if target == nil {
		return nil
	}
	if euid := syscall.Geteuid(); euid != 0 {
		if euid == target.uid {
			return dropRootRights()
		}
		return fmt.Errorf("sandbox: running as uid %d, which cannot switch to uid %d: run as root or as that user: %w", euid, target.uid, syscall.EPERM)
	}
	// Supplementary groups first (root's would survive otherwise), then the gid while we may
	// still change it, then the uid; each sets the real, effective and saved ids.
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("sandbox: dropping supplementary groups: %w", err)
	}
	if err := syscall.Setgid(target.gid); err != nil {
		return fmt.Errorf("sandbox: switching to gid %d: %w", target.gid, err)
	}
	if err := syscall.Setuid(target.uid); err != nil {
		return fmt.Errorf("sandbox: switching to uid %d: %w", target.uid, err)
	}
	// A parent that set SECBIT_NO_SETUID_FIXUP would have let us keep root's capabilities
	// across setuid: make sure root is really out of reach.
	if syscall.Setuid(0) == nil {
		return errors.New("sandbox: the process could become root again after switching user: refusing to go on")
	}
	return nil
}

// dropRootRights is the switch for a process that already runs as the target user: USER must
// mean USER's rights only. A parent that changed only the effective ids left real ones the
// process could take back (setuid to its real uid needs no privilege): all three are made the
// effective ones. Every capability set of every thread is emptied, which such a process has
// only if its parent gave them (ambient capabilities survive exec, and a setuid under
// SECBIT_NO_SETUID_FIXUP keeps root's; lowering the permitted set clears the ambient one).
// Root's group, which it can no longer leave, is refused as Confine refuses gid 0.
func dropRootRights() error {
	uid, gid := syscall.Geteuid(), syscall.Getegid()
	if err := errors.Join(syscall.Setresgid(gid, gid, gid), syscall.Setresuid(uid, uid, uid)); err != nil {
		return fmt.Errorf("sandbox: making the real and saved ids the effective ones: %w", err)
	}
	header := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&header)), uintptr(unsafe.Pointer(&none[0])), 0); errno != 0 {
		return fmt.Errorf("sandbox: dropping the capabilities a parent gave: %w", errno)
	}
	groups, err := syscall.Getgroups()
	if err != nil {
		return fmt.Errorf("sandbox: reading the supplementary groups: %w", err)
	}
	if gid == 0 || slices.Contains(groups, 0) {
		return fmt.Errorf("sandbox: running as uid %d but in group 0 (root's), which it cannot leave: %w", uid, syscall.EPERM)
	}
	return nil
}

// ResolveUser resolves user as Confine will, so that a caller can check it
// (and own a directory for it) before it starts the confined process.
func ResolveUser(user string) (uid, gid int, err error) {
	a, err := resolveUser(user, passwdPath)
	return a.uid, a.gid, err
}

// resolveUser turns a user name or a numeric uid into an account, as getpwnam or getpwuid
// would from passwdFile: a uid with no entry there gets its own number as gid. Root's uid or
// gid is refused: switching to them confines nothing. The errors carry EINVAL or EPERM for
// the unpacker's status.
func resolveUser(user, passwdFile string) (account, error) {
	var a account
	var err error
	if strings.Trim(user, "0123456789") == "" {
		a.uid, err = parseID(user)
		a.gid = a.uid
		if entry, lookupErr := lookupPasswd(passwdFile, 2, strconv.Itoa(a.uid)); err == nil && lookupErr == nil {
			a.gid = entry.gid
		}
	} else {
		a, err = lookupPasswd(passwdFile, 0, user)
	}
	if err != nil {
		return account{}, fmt.Errorf("sandbox: user %q: %w (%w)", user, err, syscall.EINVAL)
	}
	if a.uid == 0 || a.gid == 0 {
		return account{}, fmt.Errorf("sandbox: user %q has uid %d, gid %d: refusing to run the sandbox as root: %w", user, a.uid, a.gid, syscall.EPERM)
	}
	return a, nil
}

// lookupPasswd finds the first entry of a passwd(5) file (name:password:uid:gid:...) whose
// field (0 the name, 2 the uid) is value. It reads the file itself rather than using os/user,
// whose cgo variant would make AllThreadsSyscall unusable.
func lookupPasswd(passwdFile string, field int, value string) (account, error) {
	f, err := os.Open(passwdFile)
	if err != nil {
		return account{}, err
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Split(lines.Text(), ":")
		if len(fields) < 4 || fields[field] != value {
			continue
		}
		uid, uidErr := parseID(fields[2])
		gid, gidErr := parseID(fields[3])
		if err := errors.Join(uidErr, gidErr); err != nil {
			return account{}, fmt.Errorf("%s: malformed entry: %w", passwdFile, err)
		}
		return account{uid, gid}, nil
	}
	if err := lines.Err(); err != nil {
		return account{}, fmt.Errorf("reading %s: %w", passwdFile, err)
	}
	return account{}, fmt.Errorf("no such user in %s", passwdFile)
}

// parseID parses a decimal uid or gid. 2^32-1 is excluded: to the set*id calls it means
// "leave unchanged".
func parseID(s string) (int, error) {
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil || id == 1<<32-1 {
		return 0, fmt.Errorf("%q is not a valid uid or gid", s)
	}
	return int(id), nil
}
