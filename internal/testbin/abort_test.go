package testbin

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// abortChild is set in the test binary run by the tests below, as the test
// that starts a process and then hangs or is interrupted.
const abortChild = "PEDOS_TESTBIN_ABORT_CHILD"

// TestAbortedChild is the child's part: it starts a sleep with StopAtEnd,
// prints its pid, and waits longer than any timeout the parent gives it.
func TestAbortedChild(t *testing.T) {
	if os.Getenv(abortChild) == "" {
		t.Skip("run by TestStopsOnAbort as the child test binary")
	}
	sleep := exec.Command("sleep", "120")
	StopAtEnd(t, sleep)
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("pid " + strconv.Itoa(sleep.Process.Pid) + "\n")
	time.Sleep(2 * time.Minute)
}

// startAbortedChild starts child, a test binary running TestAbortedChild,
// and returns the pid of the sleep it started, held by a pidfd (killed when
// the test ends) while the child, its parent, is alive: no check or kill
// can reach another process with its pid.
func startAbortedChild(t *testing.T, child *exec.Cmd) (pid, sleepFD int) {
	t.Helper()
	child.Env = append(os.Environ(), abortChild+"=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	StopAtEnd(t, child)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	pid, err = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	if err != nil {
		t.Fatalf("the child printed %q, not its sleep's pid", line)
	}
	if sleepFD, err = unix.PidfdOpen(pid, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.PidfdSendSignal(sleepFD, unix.SIGKILL, nil, 0)
		unix.Close(sleepFD)
	})
	return pid, sleepFD
}

// A test binary that runs into -test.timeout, or gets SIGINT or SIGTERM,
// runs no t.Cleanup: what its tests started is stopped all the same.
func TestStopsOnAbort(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout string
		signal  syscall.Signal
	}{
		{"timeout", "2s", 0},
		{"SIGINT", "10m", syscall.SIGINT},
		{"SIGTERM", "10m", syscall.SIGTERM},
	} {
		t.Run(c.name, func(t *testing.T) {
			child := exec.Command(os.Args[0], "-test.run", "^TestAbortedChild$", "-test.timeout", c.timeout)
			pid, sleepFD := startAbortedChild(t, child)
			if c.signal != 0 {
				if err := child.Process.Signal(c.signal); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() { done <- child.Wait() }()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatal("the child test binary did not end")
			}
			// A pidfd is readable once its process has ended.
			fds := []unix.PollFd{{Fd: int32(sleepFD), Events: unix.POLLIN}}
			if n, err := unix.Poll(fds, 5000); err != nil || n != 1 {
				t.Errorf("the sleep (pid %d) the child started is still running (%v)", pid, err)
			}
		})
	}
}

// A test binary started with SIGINT ignored (run in the background by a
// shell without job control) keeps ignoring it, as it would without Main:
// only a signal that would have ended it ends it, and stops its processes.
func TestIgnoredSignalStaysIgnored(t *testing.T) {
	child := exec.Command("/bin/sh", "-c", `trap '' INT; exec "$0" "$@"`, os.Args[0], "-test.run", "^TestAbortedChild$", "-test.timeout", "10m")
	startAbortedChild(t, child)
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()
	if err := child.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the child, ignoring SIGINT, ended on it: %v", err)
	case <-time.After(time.Second):
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the child test binary did not end on SIGTERM")
	}
}
