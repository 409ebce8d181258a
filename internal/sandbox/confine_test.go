package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// helperEnv carries a helperCase to the child test binary that TestConfine starts: Confine is
// irrevocable, so only a throwaway process can prove what it forbids.
const helperEnv = "PEDOS_SANDBOX_HELPER_CASE"

// helperCase is one confined attempt: the policy, the action, and a directory the policy does
// not name (holding the file "secret"), and a process outside the sandbox.
type helperCase struct {
	Policy  Policy
	Action  string
	Outside string
	Parent  int // the test process, for the signal check
	Segment int // a SysV shared-memory segment the test process made
}

// secbitNoSetuidFixup is SECBIT_NO_SETUID_FIXUP of <linux/securebits.h>, which x/sys/unix lacks.
const secbitNoSetuidFixup = 1 << 2

// nobodyUID is the uid the root-only case switches to (Debian's nobody; numeric, so no lookup).
const nobodyUID = 65534

// actions are what the confined child attempts; nil means the attempt succeeded. Each returns
// the raw error so that the errno says which mechanism refused (Landlock EACCES, seccomp EPERM).
var actions = map[string]func(c helperCase) error{
	"create-inside": func(c helperCase) error {
		return os.WriteFile(filepath.Join(c.Policy.WritableDir, "created"), []byte("x"), 0o644)
	},
	"create-outside": func(c helperCase) error {
		return os.WriteFile(filepath.Join(c.Outside, "created"), []byte("x"), 0o644)
	},
	"read-outside": func(c helperCase) error {
		_, err := os.ReadFile(filepath.Join(c.Outside, "secret"))
		return err
	},
	"list-outside": func(c helperCase) error {
		_, err := os.ReadDir(c.Outside)
		return err
	},
	"truncate-outside": func(c helperCase) error { return os.Truncate(filepath.Join(c.Outside, "secret"), 0) },
	"remove-outside":   func(c helperCase) error { return os.Remove(filepath.Join(c.Outside, "secret")) },
	"rename-out": func(c helperCase) error {
		inside := filepath.Join(c.Policy.WritableDir, "moved")
		if err := os.WriteFile(inside, []byte("x"), 0o644); err != nil {
			return err
		}
		return os.Rename(inside, filepath.Join(c.Outside, "moved"))
	},
	"link-in": func(c helperCase) error {
		return os.Link(filepath.Join(c.Outside, "secret"), filepath.Join(c.Policy.WritableDir, "linked"))
	},
	// A link made inside that points out: Landlock judges the path it resolves to.
	"symlink-out": func(c helperCase) error {
		link := filepath.Join(c.Policy.WritableDir, "link")
		if err := os.Symlink(filepath.Join(c.Outside, "secret"), link); err != nil {
			return err
		}
		_, err := os.ReadFile(link)
		return err
	},
	"mkfifo-inside": func(c helperCase) error { return unix.Mkfifo(filepath.Join(c.Policy.WritableDir, "fifo"), 0o600) },
	"proc-self-mem": func(helperCase) error {
		f, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0)
		if err == nil {
			f.Close()
		}
		return err
	},
	"mount-inside": func(c helperCase) error {
		target := filepath.Join(c.Policy.WritableDir, "mnt")
		if err := os.Mkdir(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("pedos-sandbox-test", target, "tmpfs", 0, "size=64k"); err != nil {
			return err
		}
		return unix.Unmount(target, 0)
	},
	"tcp-socket":  func(helperCase) error { return openSocket(unix.AF_INET, unix.SOCK_STREAM) },
	"udp6-socket": func(helperCase) error { return openSocket(unix.AF_INET6, unix.SOCK_DGRAM) },
	"unix-socket": func(helperCase) error { return openSocket(unix.AF_UNIX, unix.SOCK_STREAM) },
	"socketpair": func(helperCase) error {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err == nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
		}
		return err
	},
	// What Landlock does not govern, seccomp refuses: metadata by path, SysV IPC, inotify.
	"chmod-outside": func(c helperCase) error { return os.Chmod(filepath.Join(c.Outside, "secret"), 0o666) },
	// A file's times: by path outside DIR refused (also "" with AT_EMPTY_PATH, which the filter
	// cannot tell from a path), on a descriptor with Futimens allowed.
	"utimes-outside": func(c helperCase) error {
		return unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(c.Outside, "secret"), []unix.Timespec{{Sec: 1}, {Sec: 2}}, 0)
	},
	// Other processes of the same user (the parent here): a hard RLIMIT_CPU would kill them
	// around Landlock's signal scoping. Only read or set to what it is: nothing changes.
	"prlimit-other": func(helperCase) error {
		var limit unix.Rlimit
		return unix.Prlimit(os.Getppid(), unix.RLIMIT_NOFILE, nil, &limit)
	},
	"setpriority-other": func(helperCase) error {
		prio, err := unix.Getpriority(unix.PRIO_PROCESS, os.Getppid())
		if err != nil {
			return err
		}
		return unix.Setpriority(unix.PRIO_PROCESS, os.Getppid(), 20-prio) // getpriority says 20-nice
	},
	// A descriptor the parent let through exec (fd 3, the outside secret opened for writing).
	"inherited-descriptor": func(helperCase) error {
		_, err := unix.Write(3, []byte("leaked"))
		return err
	},
	"prlimit-self": func(helperCase) error {
		var limit unix.Rlimit
		return unix.Prlimit(0, unix.RLIMIT_NOFILE, nil, &limit)
	},
	"utimes-own-descriptor": func(c helperCase) error {
		f, err := os.Create(filepath.Join(c.Policy.WritableDir, "timed"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := Futimens(int(f.Fd()), [2]unix.Timespec{{Sec: 1}, {Sec: 2}}); err != nil {
			return err
		}
		if st, err := f.Stat(); err != nil || st.ModTime().Unix() != 2 {
			return fmt.Errorf("after Futimens: %v, %v", st, err)
		}
		return nil
	},
	"xattr-outside": func(c helperCase) error {
		return unix.Setxattr(filepath.Join(c.Outside, "secret"), "user.pedos-test", []byte("x"), 0)
	},
	"inotify-outside": func(c helperCase) error {
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		_, err = unix.InotifyAddWatch(fd, c.Outside, unix.IN_ALL_EVENTS)
		return err
	},
	"fanotify-outside": func(c helperCase) error {
		fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_FID, unix.O_RDONLY)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.FanotifyMark(fd, unix.FAN_MARK_ADD, unix.FAN_OPEN|unix.FAN_EVENT_ON_CHILD, unix.AT_FDCWD, c.Outside)
	},
	"user-keyring": func(helperCase) error {
		id, err := unix.AddKey("user", "pedos-sandbox-test", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
		if err == nil {
			_, err = unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0)
		}
		return err
	},
	"chown-outside": func(c helperCase) error {
		return os.Chown(filepath.Join(c.Outside, "secret"), os.Getuid(), os.Getgid())
	},
	"sysv-shm": func(helperCase) error {
		id, _, errno := unix.Syscall(unix.SYS_SHMGET, unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
		if errno != 0 {
			return errno
		}
		_, _, errno = unix.Syscall(unix.SYS_SHMCTL, id, unix.IPC_RMID, 0)
		if errno != 0 {
			return errno
		}
		return nil
	},
	// Another's existing SysV object, by its id (ids are small and easy to scan for).
	"sysv-existing": func(c helperCase) error {
		var ds unix.SysvShmDesc
		_, err := unix.SysvShmCtl(c.Segment, unix.IPC_STAT, &ds)
		return err
	},
	// A POSIX message queue: Landlock refuses mq_open only after the queue was made.
	"mq-open": func(helperCase) error {
		name, err := unix.BytePtrFromString(fmt.Sprint("pedos-sandbox-test-", os.Getpid()))
		if err != nil {
			return err
		}
		fd, _, errno := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(name)), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600, 0, 0, 0)
		if errno != 0 {
			return errno
		}
		unix.Close(int(fd))
		if _, _, errno = unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(name)), 0, 0); errno != 0 {
			return errno
		}
		return nil
	},
	// ptrace on a process that is not this one's tracee: the kernel answers ESRCH (counted as
	// working: ptrace is reachable), seccomp EPERM before it looks.
	"ptrace": func(c helperCase) error {
		_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKUSR, uintptr(c.Parent), 0, 0, 0, 0)
		if errno == unix.ESRCH {
			return nil
		}
		return errno
	},
	"memfd": func(helperCase) error {
		fd, err := unix.MemfdCreate("pedos-sandbox-test", unix.MFD_CLOEXEC)
		if err == nil {
			unix.Close(fd)
		}
		return err
	},
	// os.StartProcess rather than os/exec, which would first open /dev/null (Landlock: EACCES).
	"signal-outside": func(c helperCase) error { return unix.Kill(c.Parent, 0) },
	"exec": func(helperCase) error {
		process, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
		if err == nil {
			_, err = process.Wait()
		}
		return err
	},
	// execve itself, in this process (os.StartProcess above is refused at its clone first): of a
	// path that does not exist, so that the kernel would answer ENOENT and Landlock EACCES;
	// seccomp's EPERM comes before both.
	"execve": func(helperCase) error {
		return unix.Exec("/nonexistent/pedos-sandbox-test", []string{"x"}, nil)
	},
	// A raw fork: clone with fork's flags. Should it succeed, the new process leaves at once.
	"fork": func(helperCase) error {
		pid, _, errno := unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if errno != 0 {
			return errno
		}
		if pid == 0 {
			unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		var status unix.WaitStatus
		_, err := unix.Wait4(int(pid), &status, 0, nil)
		return err
	},
	// TIOCSTI on a terminal open before Confine (run by hand, the unpacker's stdin and
	// stderr can be root's terminal, whose shell would run what it typed); unconfined, as
	// root, on a terminal of its own.
	"tty-inject": func(helperCase) error {
		fd := terminalDescriptor
		if fd < 0 {
			master, slave, err := openTerminal()
			if err != nil {
				return err
			}
			defer unix.Close(master)
			defer unix.Close(slave)
			fd = slave
		}
		c := byte('x')
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&c))); errno != 0 {
			return errno
		}
		return nil
	},
	"io-uring": func(helperCase) error {
		var params [120]byte // struct io_uring_params, zeroed
		fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params)), 0)
		if errno != 0 {
			return errno
		}
		return unix.Close(int(fd))
	},
	"oversized-file": func(c helperCase) error {
		big := make([]byte, c.Policy.MaxFileSize+1)
		return os.WriteFile(filepath.Join(c.Policy.WritableDir, "big"), big, 0o644)
	},
	// Private writable memory past RLIMIT_DATA, as an allocation without end would ask for.
	"big-allocation": func(helperCase) error {
		b, err := unix.Mmap(-1, 0, maxDataBytes+(16<<20), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err == nil {
			err = unix.Munmap(b)
		}
		return err
	},
	"rlimits":       checkRlimits,
	"switched-user": checkSwitchedUser,
	// Confine must refuse to go on first (helperProcess sets SECBIT_NO_SETUID_FIXUP).
	"keeps-capabilities": checkSwitchedUser,
	// "every-thread" (checkEveryThread) needs the threads helperProcess started before
	// Confine; "refuse-to-root" never gets past Confine.
}

// hostMayForbid are the actions a container runtime's own seccomp profile often refuses
// (Docker's refuses keyctl and fanotify_init without CAP_SYS_ADMIN): there, the unconfined
// attempt fails too, and the case is skipped rather than failed.
var hostMayForbid = map[string]bool{"fanotify-outside": true, "user-keyring": true}

// terminalDescriptor is the terminal helperProcess opens before Confine for "tty-inject".
var terminalDescriptor = -1

// openTerminal opens a new pseudo-terminal's both ends, neither as the controlling terminal.
func openTerminal() (master, slave int, err error) {
	if master, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err != nil {
		return -1, -1, err
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0)
	}
	if err == nil {
		slave, err = unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		unix.Close(master)
		return -1, -1, err
	}
	return master, slave, nil
}

func openSocket(domain, typ int) error {
	fd, err := unix.Socket(domain, typ, 0)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func checkRlimits(c helperCase) error {
	for _, want := range []struct {
		resource int
		max      uint64
	}{{unix.RLIMIT_CORE, 0}, {unix.RLIMIT_NOFILE, maxOpenFiles}, {unix.RLIMIT_DATA, maxDataBytes}, {unix.RLIMIT_FSIZE, uint64(c.Policy.MaxFileSize)}} {
		var got unix.Rlimit
		if err := unix.Getrlimit(want.resource, &got); err != nil {
			return err
		}
		if got.Cur != want.max || got.Max != want.max {
			return fmt.Errorf("rlimit %d is %d/%d, want %d", want.resource, got.Cur, got.Max, want.max)
		}
	}
	return nil
}

func checkSwitchedUser(c helperCase) error {
	ids := []int{unix.Getuid(), unix.Geteuid(), unix.Getgid(), unix.Getegid()}
	for _, id := range ids {
		if id != nobodyUID {
			return fmt.Errorf("uid, euid, gid, egid are %v, want all %d", ids, nobodyUID)
		}
	}
	if groups, err := unix.Getgroups(); err != nil || len(groups) != 0 {
		return fmt.Errorf("supplementary groups %v (%v), want none", groups, err)
	}
	if err := syscall.Setuid(0); err == nil {
		return errors.New("setuid(0) succeeded")
	}
	// The parent checks the owner of this file.
	return os.WriteFile(filepath.Join(c.Policy.WritableDir, "created"), []byte("x"), 0o644)
}

// lockedThread runs functions on one OS thread, so that a check can target a thread that
// existed before Confine, or one the runtime started after it.
type lockedThread chan func()

func startLockedThread() lockedThread {
	thread := make(lockedThread)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread stays dedicated until exit
		for fn := range thread {
			fn()
		}
	}()
	return thread
}

func (thread lockedThread) run(fn func() error) error {
	done := make(chan error)
	thread <- func() { done <- fn() }
	return <-done
}

// checkEveryThread proves that the threads started before Confine, and one started after, all
// carry no_new_privs, the Landlock domain and the seccomp filter.
func checkEveryThread(c helperCase, before []lockedThread) error {
	threads := append(before, startLockedThread())
	tids := map[int]bool{}
	for _, thread := range threads {
		err := thread.run(func() error {
			tids[unix.Gettid()] = true
			if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || nnp != 1 {
				return fmt.Errorf("thread %d: no_new_privs %d (%v)", unix.Gettid(), nnp, err)
			}
			if err := actions["create-outside"](c); !errors.Is(err, unix.EACCES) {
				return fmt.Errorf("thread %d: creating outside: %v, want EACCES", unix.Gettid(), err)
			}
			if err := openSocket(unix.AF_INET, unix.SOCK_STREAM); !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("thread %d: socket: %v, want EPERM", unix.Gettid(), err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(tids) != len(threads) {
		return fmt.Errorf("the checks ran on %d distinct threads, want %d", len(tids), len(threads))
	}
	return nil
}

// checkNoCapabilities proves that no thread, old or new, holds a capability, and that root is
// out of reach.
func checkNoCapabilities(c helperCase, before []lockedThread) error {
	for _, thread := range append(before, startLockedThread()) {
		err := thread.run(func() error {
			header := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var sets [2]unix.CapUserData
			if err := unix.Capget(&header, &sets[0]); err != nil {
				return err
			}
			if sets != [2]unix.CapUserData{} {
				return fmt.Errorf("thread %d holds capabilities %+v", unix.Gettid(), sets)
			}
			if ambient, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, unix.CAP_DAC_OVERRIDE, 0, 0); err != nil || ambient != 0 {
				return fmt.Errorf("thread %d: ambient CAP_DAC_OVERRIDE %d (%v)", unix.Gettid(), ambient, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := syscall.Setuid(0); err == nil {
		return errors.New("setuid(0) succeeded")
	}
	// The parent checks the owner of this file.
	return os.WriteFile(filepath.Join(c.Policy.WritableDir, "created"), []byte("x"), 0o644)
}

// TestMain runs the test binary as one of the children the tests and benchmarks start (their
// case in the environment), else the tests.
func TestMain(m *testing.M) {
	if raw := os.Getenv(helperEnv); raw != "" {
		helperProcess(raw)
		os.Exit(0)
	}
	if spec := os.Getenv(fileCreationEnv); spec != "" {
		fileCreationChild(spec)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperProcess is the confined child: it starts a few threads, calls Confine, attempts one
// action, and prints the report and the outcome for TestConfine to assert.
func helperProcess(raw string) {
	var c helperCase
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		fmt.Printf("outcome: bad case: %v\n", err)
		os.Exit(2)
	}
	var before []lockedThread
	for range 4 {
		before = append(before, startLockedThread())
	}
	// What a parent may have left that Confine must undo or refuse: root's supplementary group,
	// and SECBIT_NO_SETUID_FIXUP, which keeps root's capabilities across setuid (every thread).
	switch c.Action {
	case "switched-user":
		if err := syscall.Setgroups([]int{0}); err != nil {
			fmt.Printf("outcome: setgroups: %v\n", err)
			os.Exit(0)
		}
	case "keeps-capabilities", "user-with-capabilities":
		if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_SECUREBITS, secbitNoSetuidFixup, 0); errno != 0 {
			fmt.Printf("outcome: PR_SET_SECUREBITS: %v\n", errno)
			os.Exit(0)
		}
	}
	// Already the target user, but with every capability root had (what a parent that ran
	// the unpacker as USER with capabilities would leave), or in root's group.
	switch c.Action {
	case "user-with-capabilities":
		if err := errors.Join(syscall.Setgroups([]int{}), syscall.Setgid(nobodyUID), syscall.Setuid(nobodyUID)); err != nil {
			fmt.Printf("outcome: switching to nobody: %v\n", err)
			os.Exit(0)
		}
	case "user-with-root-real-uid":
		// What `setpriv --ruid 0 --euid USER` leaves: root's real uid, which an
		// unprivileged process may take back as its effective one.
		if err := errors.Join(syscall.Setgroups([]int{}), syscall.Setresgid(nobodyUID, nobodyUID, nobodyUID), syscall.Setresuid(0, nobodyUID, nobodyUID)); err != nil {
			fmt.Printf("outcome: switching to nobody: %v\n", err)
			os.Exit(0)
		}
	case "user-in-root-group":
		if err := errors.Join(syscall.Setgroups([]int{0}), syscall.Setgid(nobodyUID), syscall.Setuid(nobodyUID)); err != nil {
			fmt.Printf("outcome: switching to nobody: %v\n", err)
			os.Exit(0)
		}
	case "user-with-root-gid":
		if err := errors.Join(syscall.Setgroups([]int{}), syscall.Setgid(0), syscall.Setuid(nobodyUID)); err != nil {
			fmt.Printf("outcome: switching to nobody: %v\n", err)
			os.Exit(0)
		}
	case "own-descriptor":
		// What the unpacker holds when it calls Confine: its staging directory, opened
		// close-on-exec as every descriptor of its own.
		fd, err := unix.Open(c.Policy.WritableDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			fmt.Printf("outcome: open: %v\n", err)
			os.Exit(0)
		}
		ownDescriptor = fd
	case "tty-inject":
		_, slave, err := openTerminal()
		if err != nil {
			fmt.Printf("outcome: terminal: %v\n", err)
			os.Exit(0)
		}
		terminalDescriptor = slave
	case "tcp-bind-own-socket":
		// A TCP socket of the process's own, made before Confine: seccomp stops making
		// one, Landlock (ABI 4) what one already made may do.
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Printf("outcome: socket: %v\n", err)
			os.Exit(0)
		}
		ownSocket = fd
	}
	warnings, err := Confine(c.Policy)
	if err != nil {
		fmt.Printf("outcome: confine: %v\n", err)
		os.Exit(0)
	}
	// What the kernel says is in force, not what Confine says it did
	// (Landlock shows in the outcomes: it has no such query).
	nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	seccomp, _ := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	fmt.Printf("report: nnp=%t seccomp-filter=%t uid=%d warnings=%q\n", nnp == 1, seccomp == 2, os.Geteuid(), warnings)
	action := actions[c.Action]
	switch c.Action {
	case "every-thread":
		action = func(c helperCase) error { return checkEveryThread(c, before) }
	case "user-with-capabilities", "user-with-root-real-uid":
		action = func(c helperCase) error { return checkNoCapabilities(c, before) }
	}
	fmt.Printf("outcome: %s\n", outcome(action(c)))
	os.Exit(0)
}

// outcome names an error by its errno when it has one, so the parent can tell which mechanism
// refused.
func outcome(err error) string {
	var errno unix.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return unix.ErrnoName(errno)
	default:
		return err.Error()
	}
}

// sandboxDirs makes the directories of one case below a fresh temporary directory.
func sandboxDirs(t *testing.T) helperCase {
	base := t.TempDir()
	// The switched user must be able to reach the writable directory (t.TempDir makes both
	// levels 0700).
	for _, dir := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	segment, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatalf("a SysV segment for the test: %v", err)
	}
	t.Cleanup(func() { unix.SysvShmCtl(segment, unix.IPC_RMID, nil) })
	c := helperCase{Outside: filepath.Join(base, "outside"), Parent: os.Getpid(), Segment: segment}
	c.Policy.WritableDir = filepath.Join(base, "writable")
	if err := os.MkdirAll(c.Outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Outside, "secret"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(c.Policy.WritableDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return c
}

// landlockABI is the kernel's Landlock ABI version, 0 without Landlock.
func landlockABI() int {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(abi)
}

// requireKernelSandbox skips when this kernel lacks what the proofs exercise.
func requireKernelSandbox(t *testing.T) {
	t.Helper()
	if landlockABI() == 0 {
		t.Skip("this kernel has no usable Landlock")
	}
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		t.Skipf("this kernel has no seccomp (%v)", err)
	}
	if _, ok := seccompArches[runtime.GOARCH]; !ok {
		t.Skipf("no seccomp filter for %s", runtime.GOARCH)
	}
}

// TestConfine runs each action twice: unconfined in this process (it must work, so that a
// refusal is the sandbox's doing), then in a confined child, whose outcome must be want.
func TestConfine(t *testing.T) {
	requireKernelSandbox(t)
	const maxFileSize = 1 << 16
	tests := []struct {
		action   string
		baseline bool   // the action works unconfined
		user     string // Policy.User
		want     string // outcome in the child
	}{
		{"create-inside", true, "", "ok"},
		// Landlock: the child still runs as root, so file permissions would allow all of these.
		{"create-outside", true, "", "EACCES"},
		{"read-outside", true, "", "EACCES"},
		{"list-outside", true, "", "EACCES"},
		{"truncate-outside", true, "", "EACCES"},
		{"remove-outside", true, "", "EACCES"},
		{"rename-out", true, "", "EACCES"},
		{"link-in", true, "", "EXDEV"}, // Landlock refuses a link that would reparent a file
		{"symlink-out", true, "", "EACCES"},
		{"mkfifo-inside", true, "", "EACCES"},
		{"proc-self-mem", true, "", "EACCES"},
		{"mount-inside", true, "", "EPERM"},
		// Landlock signal scoping (signal 0 only checks the permission).
		{"signal-outside", true, "", "EPERM"},
		// Seccomp answers EPERM before Landlock (which would say EACCES for exec) is asked.
		{"tcp-socket", true, "", "EPERM"},
		{"udp6-socket", true, "", "EPERM"},
		{"unix-socket", true, "", "EPERM"},
		{"socketpair", true, "", "EPERM"},
		{"exec", true, "", "EPERM"},
		{"execve", false, "", "EPERM"},
		{"io-uring", true, "", "EPERM"},
		{"tty-inject", true, "", "EPERM"},
		{"chmod-outside", true, "", "EPERM"},
		{"utimes-outside", true, "", "EPERM"},
		{"utimes-own-descriptor", true, "", "ok"},
		{"prlimit-other", true, "", "EPERM"},
		{"setpriority-other", true, "", "EPERM"},
		{"prlimit-self", true, "", "ok"},
		{"inherited-descriptor", false, "", "EBADF"},
		{"xattr-outside", true, "", "EPERM"},
		{"inotify-outside", true, "", "EPERM"},
		{"sysv-shm", true, "", "EPERM"},
		{"sysv-existing", true, "", "EPERM"},
		{"mq-open", true, "", "EPERM"},
		{"fanotify-outside", true, "", "EPERM"},
		{"user-keyring", true, "", "EPERM"},
		{"chown-outside", true, "", "EPERM"},
		{"fork", true, "", "EPERM"},
		{"ptrace", true, "", "EPERM"},
		{"memfd", true, "", "EPERM"},
		{"oversized-file", true, "", "EFBIG"},
		{"big-allocation", true, "", "ENOMEM"},
		{"rlimits", false, "", "ok"},
		{"every-thread", false, "", "ok"},
		{"switched-user", false, fmt.Sprint(nobodyUID), "ok"},
		{"user-with-capabilities", false, fmt.Sprint(nobodyUID), "ok"},
		{"user-with-root-real-uid", false, fmt.Sprint(nobodyUID), "ok"},
		{"user-in-root-group", false, fmt.Sprint(nobodyUID), "confine: sandbox: running as uid 65534 but in group 0 (root's), which it cannot leave: operation not permitted"},
		{"keeps-capabilities", false, fmt.Sprint(nobodyUID), "confine: sandbox: the process could become root again after switching user: refusing to go on"},
		{"refuse-to-root", false, "0", `confine: sandbox: user "0" has uid 0, gid 0: refusing to run the sandbox as root: operation not permitted`},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			switchesUser := tt.action == "switched-user" || tt.action == "user-with-capabilities" || tt.action == "user-with-root-real-uid"
			if tt.user != "" && tt.user != "0" && os.Geteuid() != 0 {
				t.Skip("switching users needs root")
			}
			if tt.action == "signal-outside" && !canScopeSignals(landlockABI()) {
				t.Skip("this kernel cannot scope signals safely for Go (needs Landlock ABI 6 with erratum 2)")
			}
			if tt.baseline {
				c := sandboxDirs(t)
				c.Policy.MaxFileSize = maxFileSize
				if got := outcome(actions[tt.action](c)); got != "ok" {
					if hostMayForbid[tt.action] {
						t.Skipf("unconfined %s: %s: this host forbids it already (a container's seccomp profile), so the sandbox's refusal cannot be shown", tt.action, got)
					}
					t.Fatalf("unconfined %s: %s, want ok (the test environment is not usable)", tt.action, got)
				}
			}
			c := sandboxDirs(t)
			c.Action = tt.action
			c.Policy.MaxFileSize = maxFileSize
			c.Policy.User = tt.user
			if switchesUser {
				if err := os.Chown(c.Policy.WritableDir, nobodyUID, nobodyUID); err != nil {
					t.Fatal(err)
				}
			}
			var inherited []*os.File
			if tt.action == "inherited-descriptor" {
				secret, err := os.OpenFile(filepath.Join(c.Outside, "secret"), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer secret.Close()
				inherited = append(inherited, secret)
			}
			report, got, stderr := runConfined(t, c, inherited)
			if got != tt.want {
				t.Errorf("confined %s: %q, want %q (stderr: %s)", tt.action, got, tt.want, stderr)
			}
			if report != "" {
				uid := os.Geteuid()
				if switchesUser {
					uid = nobodyUID
				}
				// The one warning a kernel may owe: what its Landlock ABI leaves open.
				var wantWarnings []string
				abi := landlockABI()
				if gaps := landlockGaps(abi, canScopeSignals(abi)); len(gaps) > 0 {
					wantWarnings = []string{fmt.Sprintf("sandbox: Landlock ABI %d leaves open %s", abi, strings.Join(gaps, "; "))}
				}
				wantReport := fmt.Sprintf("nnp=true seccomp-filter=true uid=%d warnings=%q", uid, wantWarnings)
				if report != wantReport {
					t.Errorf("report %q, want %q", report, wantReport)
				}
			}
			if switchesUser {
				requireOwner(t, filepath.Join(c.Policy.WritableDir, "created"), nobodyUID)
			}
			if _, err := os.Stat(filepath.Join(c.Outside, "created")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a file appeared outside the writable directory (stat: %v)", err)
			}
			if secret, err := os.ReadFile(filepath.Join(c.Outside, "secret")); err != nil || string(secret) != "data" {
				t.Errorf("the file outside the writable directory now holds %q (%v), want \"data\"", secret, err)
			}
		})
	}
}

// runConfined runs helperProcess in a child with case c, passing it the inherited files
// from descriptor 3 on, and returns its report and outcome lines (without their prefixes) and
// its stderr.
func runConfined(t *testing.T, c helperCase, inherited []*os.File) (report, outcome, stderr string) {
	t.Helper()
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), helperEnv+"="+string(raw))
	child.ExtraFiles = inherited
	var stdout, errBuf bytes.Buffer
	child.Stdout, child.Stderr = &stdout, &errBuf
	if err := child.Run(); err != nil {
		t.Fatalf("child: %v\nstdout: %s\nstderr: %s", err, stdout.String(), errBuf.String())
	}
	lines := bufio.NewScanner(&stdout)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "report: "); ok {
			report = rest
		} else if rest, ok := strings.CutPrefix(lines.Text(), "outcome: "); ok {
			outcome = rest
		}
	}
	return report, outcome, errBuf.String()
}

func requireOwner(t *testing.T, path string, uid int) {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if owner := info.Sys().(*syscall.Stat_t).Uid; owner != uint32(uid) {
		t.Errorf("%s is owned by uid %d, want %d", path, owner, uid)
	}
}
