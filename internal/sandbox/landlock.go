package sandbox

import (
	"fmt"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// landlockRights are the access rights Confine uses with one Landlock ABI version. A ruleset
// may only name rights its kernel knows (EINVAL otherwise), so each version adds its own.
type landlockRights struct {
	handledFS  uint64 // file system actions denied unless a rule allows them
	handledNet uint64 // network actions denied (no rule ever allows one)
	writeFS    uint64 // allowed below WritableDir
}

func rightsForABI(abi int) landlockRights {
	const read = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	r := landlockRights{
		// ABI 1: all thirteen rights it defines.
		handledFS: unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
			read | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
			unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
			unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
			unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
			unix.LANDLOCK_ACCESS_FS_MAKE_SYM,
		// What an unpacker needs to create, fill and remove regular files, directories and
		// symlinks; never devices, FIFOs, sockets, or execution (qfile.md, "File types").
		writeFS: read | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR |
			unix.LANDLOCK_ACCESS_FS_REMOVE_FILE | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
			unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SYM,
	}
	if abi >= 2 { // renames and links between directories (ABI 1 refuses them all)
		r.handledFS |= unix.LANDLOCK_ACCESS_FS_REFER
		r.writeFS |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 { // truncate(2) and O_TRUNC
		r.handledFS |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
		r.writeFS |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 4 { // TCP: a second wall behind seccomp's socket ban, e.g. for inherited sockets
		r.handledNet = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
	}
	if abi >= 5 { // ioctl on devices opened from now on; never granted
		r.handledFS |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	return r
}

// restrictFilesystem puts every thread in a Landlock domain where writableDir is the only
// tree it may read or write, and TCP is closed (ABI ≥ 4). What this kernel's ABI leaves open is
// added to warnings: a partial mechanism is said, as a missing one is.
func restrictFilesystem(writableDir string, warnings *[]string) error {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno == unix.ENOSYS || errno == unix.EOPNOTSUPP {
		return fmt.Errorf("%w: Landlock (%v): the process can read and write wherever its user may (and pass what it reads to its caller)", errUnavailable, errno)
	}
	if errno != 0 {
		return fmt.Errorf("sandbox: asking the Landlock ABI version: %w", errno)
	}
	rights := rightsForABI(int(abi))
	// The attribute struct may be longer than this kernel's: it accepts trailing zero bytes.
	attr := unix.LandlockRulesetAttr{Handled_access_fs: rights.handledFS, Handled_access_net: rights.handledNet}
	if canScopeSignals(int(abi)) {
		// No signals to processes outside the domain, such as others of the same user.
		attr.Scoped = unix.LANDLOCK_SCOPE_SIGNAL
	}
	if gaps := landlockGaps(int(abi), attr.Scoped != 0); len(gaps) > 0 {
		*warnings = append(*warnings, fmt.Sprintf("sandbox: Landlock ABI %d leaves open %s", abi, strings.Join(gaps, "; ")))
	}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if errno != 0 {
		return fmt.Errorf("sandbox: creating a Landlock ruleset (ABI %d): %w", abi, errno)
	}
	defer unix.Close(int(fd))
	if err := allowBeneath(int(fd), writableDir, rights.writeFS); err != nil {
		return err
	}
	// landlock_restrict_self confines only the calling thread: run it on all of them.
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("sandbox: landlock_restrict_self on every thread: %w", errno)
	}
	return nil
}

// landlockGaps names what a Landlock ABI leaves open that a later one closes.
func landlockGaps(abi int, signalsScoped bool) []string {
	var gaps []string
	if abi < 3 {
		gaps = append(gaps, "truncating files outside the directory that its user may write (ABI 3, Linux 6.2)")
	}
	if abi < 4 {
		gaps = append(gaps, "TCP on a socket it inherited (ABI 4, Linux 6.7; seccomp still forbids making one)")
	}
	if !signalsScoped {
		gaps = append(gaps, "signals to other processes of its user (ABI 6 with erratum 2, Linux 6.15)")
	}
	return gaps
}

// canScopeSignals says whether signal scoping (ABI 6) is safe for a Go program. AllThreadsSyscall
// gives each thread a Landlock domain of its own, and until erratum 2 (bit 1 of the errata mask;
// Linux 6.15 and its backports) the kernel refused signals between threads of different
// domains, which the Go runtime sends (preemption, the setuid broadcast). A kernel that cannot
// report its errata has not fixed it.
func canScopeSignals(abi int) bool {
	errata, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_ERRATA)
	return abi >= 6 && errno == 0 && errata&(1<<1) != 0
}

// allowBeneath adds a rule allowing access below dir, which must be a directory.
func allowBeneath(ruleset int, dir string, access uint64) error {
	// O_PATH: the rule needs a handle on the directory, not the right to read it.
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sandbox: opening directory %s for a Landlock rule: %w", dir, err)
	}
	defer unix.Close(fd)
	rule := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
	_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("sandbox: adding a Landlock rule for %s: %w", dir, errno)
	}
	return nil
}
