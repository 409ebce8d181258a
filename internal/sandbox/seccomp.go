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
	auditArch uint32    // seccomp_data.arch of the architecture's native system calls
	denied    []uint32  // socket, socketpair, execve, execveat, io_uring_setup, then fork, vfork where they exist, then ipcAndMetadata, then kernelInterfaces
	onSelf    []argZero // allowed only with an argument 0: on the caller's own descriptor or process
	clone     uint32    // allowed only to start a thread (CLONE_THREAD)
	clone3    uint32    // answered ENOSYS: its flags are behind a pointer seccomp cannot read
	ioctl     uint32    // allowed with allowedIoctl only
}

// allowedIoctl is the one ioctl request the unpacker makes: FIONREAD, how many bytes wait after
// the end marker (S12). Every other is refused: run by hand, the unpacker's stdin and stderr can
// be root's terminal, and a terminal's ioctls type into it (TIOCSTI, TIOCLINUX's paste) or, on
// a text console, remap its keys (KDSKBSENT): root's shell would run what a compromised unpacker
// typed. The kernel reads the request as an unsigned int, so the filter compares its low 32 bits.
const allowedIoctl = unix.TIOCINQ

// argZero is a system call allowed only when argument arg is 0 (all 64 bits).
type argZero struct {
	nr  uint32
	arg uint32
}

// seccompArches holds the numbers of the kernel's tables (arch/x86/entry/syscalls/syscall_64.tbl,
// include/uapi/asm-generic/unistd.h), written out so that both filters can be tested on either
// machine; a test checks the native ones against x/sys/unix. io_uring_setup is denied because
// an io_uring can create sockets (IORING_OP_SOCKET) without any system call seccomp sees.
// New processes are denied too (fork, vfork, clone without CLONE_THREAD): the Go runtime only
// starts threads, and a process the unpacker started could outlive it. So is state that outlives
// the unpacker or belongs to others: SysV IPC (shmget, semget, msgget: a segment holds dom0's
// memory; and every call on an existing object by its id: shmat, shmctl, shmdt, semop, semctl,
// semtimedop, msgsnd, msgrcv, msgctl), POSIX message queues (mq_*: Landlock refuses mq_open only
// after the queue was made, and not mq_unlink) and the kernel's keyrings (add_key, request_key,
// keyctl: data for the next delivery's unpacker); and
// what Landlock does not govern: a file's metadata by path (chmod, fchmodat, fchmodat2, utime,
// utimes, futimesat, chown, lchown, fchownat, the *setxattr and *removexattr calls,
// file_setattr), watching files (inotify_add_watch, fanotify_init, fanotify_mark: dom0's
// activity as a side channel), and other processes of the same user (setpriority, ioprio_set,
// sched_setparam, sched_setscheduler, sched_setaffinity, sched_setattr; prlimit64 but on pid 0:
// a hard RLIMIT_CPU kills the target, around Landlock's signal scoping); and kernel interfaces
// the Go runtime never uses that only widen what a compromised unpacker can reach: ptrace
// (PTRACE_TRACEME hands it to its parent: the service's Wait then takes a trace stop for an
// exit), userfaultfd (a classic aid to exploiting kernel races), perf_event_open, and
// memfd_create (memory files outside the directory, charged to no rlimit of its own).
// The receiver sets modes and times through its own descriptors: fchmod, and utimensat with a
// NULL path (Futimens), the only utimensat allowed (any path, "" with AT_EMPTY_PATH included, is
// a pointer the filter cannot read).
var seccompArches = map[string]seccompArch{
	"amd64": {unix.AUDIT_ARCH_X86_64, []uint32{41, 53, 59, 322, 425, 57, 58,
		29, 64, 68, 248, 249, 250, 90, 268, 452, 132, 235, 261, 92, 94, 260,
		188, 189, 190, 463, 197, 198, 199, 466, 254, 300, 301,
		469, 141, 251, 142, 144, 203, 314,
		30, 31, 67, 65, 66, 220, 69, 70, 71, 240, 241, 242, 243, 244, 245,
		101, 323, 298, 319}, []argZero{{280, 1}, {302, 0}}, 56, 435, 16},
	"arm64": {unix.AUDIT_ARCH_AARCH64, []uint32{198, 199, 221, 281, 425,
		194, 190, 186, 217, 218, 219, 53, 452, 54, 5, 6, 7, 463, 14, 15, 16, 466, 27, 262, 263,
		469, 140, 30, 118, 119, 122, 274,
		196, 195, 197, 193, 191, 192, 189, 188, 187, 180, 181, 182, 183, 184, 185,
		117, 282, 241, 279}, []argZero{{88, 1}, {261, 0}}, 220, 435, 29},
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
	offsetArgs     = 16 // args[i] at 16+8i, its low 32 bits first (both architectures are little-endian)
	// x32 system calls reach x86_64 filters with this bit set in nr, under other numbers;
	// no other architecture has valid numbers this high.
	x32SyscallBit = 0x40000000
)

// bpfStep is one instruction of the filter, its jumps named by label ("" is the next
// instruction) until seccompFilter resolves them to offsets.
type bpfStep struct {
	label  string
	code   uint16
	k      uint32
	jt, jf string
}

// seccompFilter assembles the program: a system call of another architecture kills the process
// (an i386 int $0x80 would dodge the numbers below); the denied calls, every x32 call, an onSelf
// call whose argument is not 0, an ioctl but allowedIoctl and a clone that starts a process
// fail with EPERM (an error the Go runtime reports, instead of a confusing death); clone3 fails
// with ENOSYS (callers then fall back to clone); the rest runs. Between the load of nr and an
// onSelf, ioctl or clone match only jumps run, so the accumulator still holds nr at each
// comparison.
func seccompFilter(arch seccompArch) []unix.SockFilter {
	steps := []bpfStep{
		{code: bpfLoadWord, k: offsetArch},
		{code: bpfJumpEqual, k: arch.auditArch, jf: "kill"},
		{code: bpfLoadWord, k: offsetNr},
		{code: bpfJumpAtLeast, k: x32SyscallBit, jt: "deny"},
	}
	for _, nr := range arch.denied {
		steps = append(steps, bpfStep{code: bpfJumpEqual, k: nr, jt: "deny"})
	}
	steps = append(steps, bpfStep{code: bpfJumpEqual, k: arch.clone3, jt: "enosys"})
	// Block i begins at label "self-i"; a call that is not its own goes on to the next one,
	// the last to the ioctl check.
	for i, call := range arch.onSelf {
		steps = append(steps,
			bpfStep{label: fmt.Sprint("self-", i), code: bpfJumpEqual, k: call.nr, jf: fmt.Sprint("self-", i+1)},
			bpfStep{code: bpfLoadWord, k: offsetArgs + 8*call.arg},
			bpfStep{code: bpfJumpEqual, k: 0, jf: "deny"},
			bpfStep{code: bpfLoadWord, k: offsetArgs + 8*call.arg + 4},
			bpfStep{code: bpfJumpEqual, k: 0, jt: "allow", jf: "deny"},
		)
	}
	steps = append(steps,
		bpfStep{label: fmt.Sprint("self-", len(arch.onSelf)), code: bpfJumpEqual, k: arch.ioctl, jf: "clone"},
		bpfStep{code: bpfLoadWord, k: offsetArgs + 8}, // the request, args[1]
		bpfStep{code: bpfJumpEqual, k: allowedIoctl, jt: "allow", jf: "deny"},
		bpfStep{label: "clone", code: bpfJumpEqual, k: arch.clone, jf: "allow"},
		bpfStep{code: bpfLoadWord, k: offsetArgs},
		bpfStep{code: bpfJumpSet, k: unix.CLONE_THREAD, jt: "allow", jf: "deny"},
		bpfStep{label: "allow", code: bpfReturn, k: unix.SECCOMP_RET_ALLOW},
		bpfStep{label: "deny", code: bpfReturn, k: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		bpfStep{label: "kill", code: bpfReturn, k: unix.SECCOMP_RET_KILL_PROCESS},
		bpfStep{label: "enosys", code: bpfReturn, k: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
	)
	at := map[string]int{}
	for i, st := range steps {
		if st.label != "" {
			at[st.label] = i
		}
	}
	// A jump's offset counts the instructions skipped after it; all of them go forward.
	offset := func(from int, label string) uint8 {
		if label == "" {
			return 0
		}
		to, ok := at[label]
		if !ok || to <= from || to-from-1 > 255 {
			panic(fmt.Sprintf("sandbox: seccomp filter: no forward jump from %d to %q", from, label))
		}
		return uint8(to - from - 1)
	}
	filter := make([]unix.SockFilter, len(steps))
	for i, st := range steps {
		filter[i] = unix.SockFilter{Code: st.code, K: st.k, Jt: offset(i, st.jt), Jf: offset(i, st.jf)}
	}
	return filter
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
		return fmt.Errorf("%w: seccomp (no filter for %s): the process can create sockets, start processes, and change its user's files' metadata by path (Landlock, where in force, still refuses to run programs)", errUnavailable, runtime.GOARCH)
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
		return fmt.Errorf("%w: seccomp (%v): the process can create sockets, start processes, and change its user's files' metadata by path (Landlock, where in force, still refuses to run programs)", errUnavailable, errno)
	case errno != 0:
		return fmt.Errorf("sandbox: installing the seccomp filter: %w", errno)
	case tid != 0:
		return fmt.Errorf("sandbox: installing the seccomp filter: thread %d could not take it", tid)
	}
	return nil
}
