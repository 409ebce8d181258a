package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompArch says how one architecture identifies itself to seccomp and numbers the system
// calls the filter denies.
type seccompArch struct {
	auditArch uint32   // seccomp_data.arch of the architecture's native system calls
	denied    []uint32 // socket, socketpair, execve, execveat, io_uring_setup
}

// seccompArches holds the numbers of the kernel's tables (arch/x86/entry/syscalls/syscall_64.tbl,
// include/uapi/asm-generic/unistd.h), written out so that both filters can be tested on either
// machine; a test checks the native ones against x/sys/unix. io_uring_setup is denied because
// an io_uring can create sockets (IORING_OP_SOCKET) without any system call seccomp sees.
var seccompArches = map[string]seccompArch{
	"amd64": {unix.AUDIT_ARCH_X86_64, []uint32{41, 53, 59, 322, 425}},
	"arm64": {unix.AUDIT_ARCH_AARCH64, []uint32{198, 199, 221, 281, 425}},
}

// Classic BPF as seccomp runs it, over struct seccomp_data {int nr; u32 arch; ...}.
const (
	bpfLoadWord    = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJumpEqual   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJumpAtLeast = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfReturn      = unix.BPF_RET | unix.BPF_K
	offsetNr       = 0
	offsetArch     = 4
	// x32 system calls reach x86_64 filters with this bit set in nr, under other numbers;
	// no other architecture has valid numbers this high.
	x32SyscallBit = 0x40000000
)

// seccompFilter assembles the program: a system call of another architecture kills the process
// (an i386 int $0x80 would dodge the numbers below), the denied calls and every x32 call fail
// with EPERM (an error the Go runtime reports, instead of a confusing death), the rest runs.
//
//	0      load arch
//	1      arch == native ? next : goto kill
//	2      load nr
//	3      nr >= x32 bit ? goto deny : next
//	4+i    nr == denied[i] ? goto deny : next     (i < n)
//	4+n    allow
//	5+n    deny: EPERM
//	6+n    kill
//
// A jump offset counts the instructions skipped after the jump itself.
func seccompFilter(arch seccompArch) []unix.SockFilter {
	n := len(arch.denied)
	filter := []unix.SockFilter{
		{Code: bpfLoadWord, K: offsetArch},
		{Code: bpfJumpEqual, K: arch.auditArch, Jf: uint8(n + 4)},
		{Code: bpfLoadWord, K: offsetNr},
		{Code: bpfJumpAtLeast, K: x32SyscallBit, Jt: uint8(n + 1)},
	}
	for i, nr := range arch.denied {
		filter = append(filter, unix.SockFilter{Code: bpfJumpEqual, K: nr, Jt: uint8(n - i)})
	}
	return append(filter,
		unix.SockFilter{Code: bpfReturn, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: bpfReturn, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		unix.SockFilter{Code: bpfReturn, K: unix.SECCOMP_RET_KILL_PROCESS},
	)
}

// forbidSocketsAndExec installs the filter on every thread. The Go runtime itself never creates
// sockets, executes programs or uses io_uring, so it keeps working.
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
