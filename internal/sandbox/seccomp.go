package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompArch says how one architecture identifies itself to seccomp and numbers the system
// calls the filter judges.
type seccompArch struct {
	auditArch uint32   // seccomp_data.arch of the architecture's native system calls
	denied    []uint32 // socket, socketpair, execve, execveat, io_uring_setup, then fork, vfork where they exist, then ipcAndMetadata
	clone     uint32   // allowed only to start a thread (CLONE_THREAD)
	clone3    uint32   // answered ENOSYS: its flags are behind a pointer seccomp cannot read
	utimensat uint32   // allowed only with a NULL path: on a descriptor (Futimens)
}

// seccompArches holds the numbers of the kernel's tables (arch/x86/entry/syscalls/syscall_64.tbl,
// include/uapi/asm-generic/unistd.h), written out so that both filters can be tested on either
// machine; a test checks the native ones against x/sys/unix. io_uring_setup is denied because
// an io_uring can create sockets (IORING_OP_SOCKET) without any system call seccomp sees.
// New processes are denied too (fork, vfork, clone without CLONE_THREAD): the Go runtime only
// starts threads, and a process the unpacker started could outlive it. So is state that outlives
// the unpacker: SysV IPC objects (shmget, semget, msgget: a segment holds dom0's memory) and the
// kernel's keyrings (add_key, request_key, keyctl: data for the next delivery's unpacker); and
// what Landlock does not govern: a file's metadata by path (chmod, fchmodat, fchmodat2, utime,
// utimes, futimesat, chown, lchown, fchownat, the *setxattr and *removexattr calls) and watching
// files (inotify_add_watch, fanotify_init, fanotify_mark: dom0's activity as a side channel).
// The receiver sets modes and times through its own descriptors: fchmod, and utimensat with a
// NULL path (Futimens), the only utimensat allowed (any path, "" with AT_EMPTY_PATH included, is
// a pointer the filter cannot read).
var seccompArches = map[string]seccompArch{
	"amd64": {unix.AUDIT_ARCH_X86_64, []uint32{41, 53, 59, 322, 425, 57, 58,
		29, 64, 68, 248, 249, 250, 90, 268, 452, 132, 235, 261, 92, 94, 260,
		188, 189, 190, 463, 197, 198, 199, 466, 254, 300, 301}, 56, 435, 280},
	"arm64": {unix.AUDIT_ARCH_AARCH64, []uint32{198, 199, 221, 281, 425,
		194, 190, 186, 217, 218, 219, 53, 452, 54, 5, 6, 7, 463, 14, 15, 16, 466, 27, 262, 263}, 220, 435, 88},
}

// Classic BPF as seccomp runs it, over struct seccomp_data {int nr; u32 arch; u64 ip;
// u64 args[6]}.
const (
	bpfLoadWord    = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJumpEqual   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJumpAtLeast = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfJumpSet     = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfReturn      = unix.BPF_RET | unix.BPF_K
	offsetNr       = 0
	offsetArch     = 4
	offsetArg0     = 16 // the low 32 bits of args[0] (both architectures are little-endian)
	offsetArg1     = 24 // the low 32 bits of args[1]; its high 32 bits follow
	// x32 system calls reach x86_64 filters with this bit set in nr, under other numbers;
	// no other architecture has valid numbers this high.
	x32SyscallBit = 0x40000000
)

// seccompFilter assembles the program: a system call of another architecture kills the process
// (an i386 int $0x80 would dodge the numbers below), the denied calls, every x32 call, a
// utimensat with a path and a clone that starts a process fail with EPERM (an error the Go
// runtime reports, instead of a confusing death), clone3 with ENOSYS (callers then fall back to
// clone), the rest runs.
//
//	0      load arch
//	1      arch == native ? next : goto kill
//	2      load nr
//	3      nr >= x32 bit ? goto deny : next
//	4+i    nr == denied[i] ? goto deny : next     (i < n)
//	4+n    nr == clone3 ? goto enosys : next
//	5+n    nr == utimensat ? next : goto 10+n
//	6+n    load args[1] low (the path pointer)
//	7+n    == 0 ? next : goto deny
//	8+n    load args[1] high
//	9+n    == 0 ? goto allow : goto deny
//	10+n   nr == clone ? next : goto allow        (A still holds nr)
//	11+n   load args[0] (the clone flags)
//	12+n   flags & CLONE_THREAD ? goto allow : goto deny
//	13+n   allow
//	14+n   deny: EPERM
//	15+n   kill
//	16+n   enosys: ENOSYS
//
// A jump offset counts the instructions skipped after the jump itself.
func seccompFilter(arch seccompArch) []unix.SockFilter {
	n := len(arch.denied)
	filter := []unix.SockFilter{
		{Code: bpfLoadWord, K: offsetArch},
		{Code: bpfJumpEqual, K: arch.auditArch, Jf: uint8(n + 13)},
		{Code: bpfLoadWord, K: offsetNr},
		{Code: bpfJumpAtLeast, K: x32SyscallBit, Jt: uint8(n + 10)},
	}
	for i, nr := range arch.denied {
		filter = append(filter, unix.SockFilter{Code: bpfJumpEqual, K: nr, Jt: uint8(n + 9 - i)})
	}
	return append(filter,
		unix.SockFilter{Code: bpfJumpEqual, K: arch.clone3, Jt: 11},
		unix.SockFilter{Code: bpfJumpEqual, K: arch.utimensat, Jf: 4},
		unix.SockFilter{Code: bpfLoadWord, K: offsetArg1},
		unix.SockFilter{Code: bpfJumpEqual, K: 0, Jf: 6},
		unix.SockFilter{Code: bpfLoadWord, K: offsetArg1 + 4},
		unix.SockFilter{Code: bpfJumpEqual, K: 0, Jt: 3, Jf: 4},
		unix.SockFilter{Code: bpfJumpEqual, K: arch.clone, Jf: 2},
		unix.SockFilter{Code: bpfLoadWord, K: offsetArg0},
		unix.SockFilter{Code: bpfJumpSet, K: unix.CLONE_THREAD, Jf: 1},
		unix.SockFilter{Code: bpfReturn, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: bpfReturn, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		unix.SockFilter{Code: bpfReturn, K: unix.SECCOMP_RET_KILL_PROCESS},
		unix.SockFilter{Code: bpfReturn, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
	)
}

// Futimens sets the times of the file open at fd: utimensat with a NULL path, the one form
// the filter lets through (Landlock does not govern a file's times, so a path could reach
// any file the user owns).
func Futimens(fd int, times [2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&times[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// forbidSocketsAndExec installs the filter on every thread. The Go runtime itself never creates
// sockets, executes programs, uses io_uring or starts processes (its threads are clones with
// CLONE_THREAD), so it keeps working.
func forbidSocketsAndExec() error {
	arch, ok := seccompArches[runtime.GOARCH]
	if !ok {
		return fmt.Errorf("%w: seccomp (no filter for %s): the process can create sockets and run programs", errUnavailable, runtime.GOARCH)
	}
	filter := seccompFilter(arch)
	program := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	// TSYNC gives the filter to every thread at once; a positive result names a thread that
	// could not take it.
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&program)))
	runtime.KeepAlive(filter)
	switch {
	case errno == unix.ENOSYS:
		return fmt.Errorf("%w: seccomp (%v): the process can create sockets and run programs", errUnavailable, errno)
	case errno != 0:
		return fmt.Errorf("sandbox: installing the seccomp filter: %w", errno)
	case tid != 0:
		return fmt.Errorf("sandbox: installing the seccomp filter: thread %d could not take it", tid)
	}
	return nil
}
