package sandbox

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// runFilter executes a seccomp program the way the kernel does, for the instructions
// seccompFilter emits (any other fails the test), over a seccomp_data holding nr, arch and
// args (the rest 0).
func runFilter(t *testing.T, filter []unix.SockFilter, nr, arch uint32, args ...uint64) uint32 {
	t.Helper()
	var data [6]uint64
	copy(data[:], args)
	var accumulator uint32
	for pc := 0; pc < len(filter); pc++ {
		instruction := filter[pc]
		switch instruction.Code {
		case bpfLoadWord:
			switch k := instruction.K; {
			case k == offsetNr:
				accumulator = nr
			case k == offsetArch:
				accumulator = arch
			case k >= offsetArgs && k < offsetArgs+48 && k%4 == 0:
				accumulator = uint32(data[(k-offsetArgs)/8] >> (32 * ((k - offsetArgs) % 8 / 4)))
			default:
				t.Fatalf("instruction %d loads offset %d", pc, instruction.K)
			}
		case bpfJumpEqual, bpfJumpAtLeast, bpfJumpSet:
			taken := accumulator == instruction.K
			switch instruction.Code {
			case bpfJumpAtLeast:
				taken = accumulator >= instruction.K
			case bpfJumpSet:
				taken = accumulator&instruction.K != 0
			}
			if taken {
				pc += int(instruction.Jt)
			} else {
				pc += int(instruction.Jf)
			}
		case bpfReturn:
			return instruction.K
		default:
			t.Fatalf("instruction %d has unexpected opcode %#x", pc, instruction.Code)
		}
	}
	t.Fatal("the program ran past its end")
	return 0
}

// filterCase is one system call and the action the filter must take on it.
type filterCase struct {
	what           string
	nr, arch, arg0 uint32
	want           uint32
}

func TestSeccompFilter(t *testing.T) {
	const (
		allow  = unix.SECCOMP_RET_ALLOW
		deny   = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		kill   = unix.SECCOMP_RET_KILL_PROCESS
		enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
		// The flags the Go runtime starts its threads with, and fork's.
		threadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD
		forkFlags   = uint32(unix.SIGCHLD)
	)
	// Calls the Go runtime and the unpacker need, in each architecture's numbering:
	// read, write, openat, close, mmap, clone, futex, connect (only creating sockets is denied).
	allowed := map[string][]uint32{
		"amd64": {0, 1, 257, 3, 9, 56, 202, 42},
		"arm64": {63, 64, 56, 57, 222, 220, 98, 203},
	}
	for name, arch := range seccompArches {
		t.Run(name, func(t *testing.T) {
			filter := seccompFilter(arch)
			if len(filter) > unix.BPF_MAXINSNS {
				t.Fatalf("%d instructions", len(filter))
			}
			cases := []filterCase{
				{"i386 socketcall", 102, unix.AUDIT_ARCH_I386, 0, kill},
				{"i386 execve", 11, unix.AUDIT_ARCH_I386, 0, kill},
				{"arm (32-bit) read", 3, unix.AUDIT_ARCH_ARM, 0, kill},
				{"x32 execve", x32SyscallBit | 520, arch.auditArch, 0, deny},
				{"x32 socket", x32SyscallBit | 41, arch.auditArch, 0, deny},
				{"clone of a thread", arch.clone, arch.auditArch, threadFlags, allow},
				{"clone of a process", arch.clone, arch.auditArch, forkFlags, deny},
				{"clone of a process sharing memory (vfork)", arch.clone, arch.auditArch, unix.CLONE_VM | unix.CLONE_VFORK | forkFlags, deny},
				{"clone3", arch.clone3, arch.auditArch, threadFlags, enosys},
			}
			for _, nr := range arch.denied {
				cases = append(cases, filterCase{"denied", nr, arch.auditArch, 0, deny})
			}
			for _, nr := range allowed[name] {
				cases = append(cases, filterCase{"allowed", nr, arch.auditArch, threadFlags, allow})
			}
			for other, otherArch := range seccompArches {
				if other != name { // the other architecture's numbers mean other calls here
					cases = append(cases, filterCase{other + " read", allowed[other][0], otherArch.auditArch, 0, kill})
				}
			}
			// ioctl with FIONREAD only, judged by the request's low 32 bits (the kernel's
			// unsigned int): not the requests that type into a terminal or remap a console's keys.
			for request, want := range map[uint64]uint32{unix.TIOCINQ: allow, 1<<32 | unix.TIOCINQ: allow, unix.TIOCSTI: deny, unix.TIOCLINUX: deny,
				0x4b49 /* KDSKBSENT */ : deny, 1<<32 | unix.TIOCSTI: deny, unix.TCGETS: deny, 0: deny} {
				if got := runFilter(t, filter, arch.ioctl, arch.auditArch, 0, request); got != want {
					t.Errorf("ioctl %#x: %#x, want %#x", request, got, want)
				}
			}
			for _, c := range cases {
				if got := runFilter(t, filter, c.nr, c.arch, uint64(c.arg0)); got != c.want {
					t.Errorf("%s (nr %d, arch %#x): %#x, want %#x", c.what, c.nr, c.arch, got, c.want)
				}
			}
			// utimensat only on a descriptor, prlimit64 only on the caller: a value in either
			// half of the argument is refused.
			for _, call := range arch.onSelf {
				for value, want := range map[uint64]uint32{0: allow, 0x7ffc_1234_5678: deny, 0x1000: deny, 1 << 32: deny} {
					args := []uint64{3, 3}
					args[call.arg] = value
					if got := runFilter(t, filter, call.nr, arch.auditArch, args...); got != want {
						t.Errorf("call %d with argument %d %#x: %#x, want %#x", call.nr, call.arg, value, got, want)
					}
				}
			}
		})
	}
}

// TestSeccompNumbers checks the written-out numbers of this machine's architecture against
// x/sys/unix, which generates them from the kernel headers.
func TestSeccompNumbers(t *testing.T) {
	arch, ok := seccompArches[runtime.GOARCH]
	if !ok {
		t.Skipf("no filter for %s", runtime.GOARCH)
	}
	want := []uint32{unix.SYS_SOCKET, unix.SYS_SOCKETPAIR, unix.SYS_EXECVE, unix.SYS_EXECVEAT, unix.SYS_IO_URING_SETUP}
	want = append(append(append(want, forkCalls...), ipcAndMetadata...), kernelInterfaces...)
	if !slices.Equal(arch.denied, want) {
		t.Errorf("denied %v, want %v", arch.denied, want)
	}
	if arch.clone != unix.SYS_CLONE || arch.clone3 != unix.SYS_CLONE3 || arch.ioctl != unix.SYS_IOCTL {
		t.Errorf("clone %d, clone3 %d, ioctl %d; want %d, %d, %d", arch.clone, arch.clone3, arch.ioctl, unix.SYS_CLONE, unix.SYS_CLONE3, unix.SYS_IOCTL)
	}
	if want := []argZero{{unix.SYS_UTIMENSAT, 1}, {unix.SYS_PRLIMIT64, 0}}; !slices.Equal(arch.onSelf, want) {
		t.Errorf("onSelf %v, want %v", arch.onSelf, want)
	}
}

// TestLandlockRights checks the least-privilege shape of every ABI's rights: nothing granted
// that is not handled (the kernel would refuse the rule), reading is a subset of writing, and
// execution, device files, FIFOs, sockets and device ioctls are never granted.
func TestLandlockRights(t *testing.T) {
	const neverGranted = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_MAKE_CHAR |
		unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	for abi := 1; abi <= 7; abi++ {
		r := rightsForABI(abi)
		// A right that is not handled is allowed everywhere: never granted means handled.
		handledFromABI1 := uint64(neverGranted &^ unix.LANDLOCK_ACCESS_FS_IOCTL_DEV)
		if r.writeFS&^r.handledFS != 0 || r.writeFS&neverGranted != 0 || r.handledFS&handledFromABI1 != handledFromABI1 {
			t.Errorf("ABI %d: handled %#x, write %#x", abi, r.handledFS, r.writeFS)
		}
		if (r.handledNet != 0) != (abi >= 4) {
			t.Errorf("ABI %d: handled network %#x", abi, r.handledNet)
		}
	}
	for abi, right := range map[int]uint64{
		2: unix.LANDLOCK_ACCESS_FS_REFER, 3: unix.LANDLOCK_ACCESS_FS_TRUNCATE,
		5: unix.LANDLOCK_ACCESS_FS_IOCTL_DEV,
	} {
		if rightsForABI(abi-1).handledFS&right != 0 || rightsForABI(abi).handledFS&right == 0 {
			t.Errorf("right %#x should be handled from ABI %d on", right, abi)
		}
	}
}

func TestResolveUser(t *testing.T) {
	tests := []struct {
		user    string
		want    account
		wantErr string // substring; "" = success
	}{
		{"nobody", account{65534, 65534}, ""},
		{"user", account{1000, 1000}, ""},
		{"1234", account{1234, 1234}, ""},
		{"0001000", account{1000, 1000}, ""},
		{"sync", account{4, 65534}, ""},
		{"4", account{4, 65534}, ""},    // a uid's group comes from its entry, as getpwuid's would
		{"1001", account{}, "refusing"}, // rootgroup's uid: its gid is 0
		{"root", account{}, "refusing"},
		{"0", account{}, "refusing"},
		{"rootgroup", account{}, "refusing"},
		{"badid", account{}, "malformed"},
		{"minusone", account{}, "malformed"},
		{"short", account{}, "no such user"},
		{"nosuchuser", account{}, "no such user"},
		{"4294967295", account{}, "not a valid uid"},
		{"99999999999", account{}, "not a valid uid"},
		{"nobody:x", account{}, "no such user"},
	}
	for _, tt := range tests {
		got, err := resolveUser(tt.user, "testdata/passwd")
		if tt.wantErr == "" && (err != nil || got != tt.want) {
			t.Errorf("resolveUser(%q) = %v, %v; want %v", tt.user, got, err, tt.want)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("resolveUser(%q) error %v, want one containing %q", tt.user, err, tt.wantErr)
		}
		// The unpacker reports the errno: EPERM for root, EINVAL for a user it cannot use.
		wantErrno := syscall.EINVAL
		if tt.wantErr == "refusing" {
			wantErrno = syscall.EPERM
		}
		if tt.wantErr != "" && !errors.Is(err, wantErrno) {
			t.Errorf("resolveUser(%q) error %v carries no %v", tt.user, err, wantErrno)
		}
	}
}

// ResolveUser is what dom0 checks unpacker_user with before it starts the unpacker: the host's
// passwd, root refused by name or number, a uid without an entry its own group.
func TestResolveUserOnThisHost(t *testing.T) {
	for _, name := range []string{"root", "0", "-1", ""} {
		if uid, gid, err := ResolveUser(name); err == nil {
			t.Errorf("ResolveUser(%q) = %d:%d, want an error", name, uid, gid)
		}
	}
	if uid, gid, err := ResolveUser("54321"); err != nil || uid != 54321 || gid != 54321 {
		t.Errorf("ResolveUser(54321) = %d:%d, %v; want 54321:54321", uid, gid, err)
	}
}

// TestLandlockGaps: what an older Landlock ABI leaves open is named, so that Confine says it
// (a partial mechanism is never silent); the newest leaves nothing.
func TestLandlockGaps(t *testing.T) {
	for _, tc := range []struct {
		abi    int
		scoped bool
		want   []string
	}{
		{7, true, nil},
		{6, false, []string{"signals"}},
		{4, false, []string{"signals"}},
		{3, false, []string{"TCP", "signals"}},
		{1, false, []string{"truncating", "TCP", "signals"}},
	} {
		gaps := landlockGaps(tc.abi, tc.scoped)
		if len(gaps) != len(tc.want) {
			t.Errorf("ABI %d: gaps %q, want %d", tc.abi, gaps, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(gaps[i], w) {
				t.Errorf("ABI %d: gap %d is %q, want it to start %q", tc.abi, i, gaps[i], w)
			}
		}
	}
}
