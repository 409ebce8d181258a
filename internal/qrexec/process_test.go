package qrexec_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/testbin"
)

// A boundedCmd is a command of cmd/ that a test runs and waits for, at most
// until qrexec.WaitDeadline: then it is killed with every process it
// started (over stdio: the daemon, the agent it runs and their services,
// each in a process group of its own), and the test fails naming it
// (wait_test.go says why).
type boundedCmd struct {
	*exec.Cmd
	limit   time.Duration
	expired atomic.Bool // killed at the deadline
}

// command prepares the named command of cmd/ with args, in a process group
// of its own.
func command(t testing.TB, name string, args ...string) *boundedCmd {
	t.Helper()
	path := testbin.Path(t, name) // a build, the first time: not part of the wait
	deadline := qrexec.WaitDeadline(t)
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	t.Cleanup(cancel)
	c := &boundedCmd{Cmd: exec.CommandContext(ctx, path, args...), limit: time.Until(deadline)}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		// Also when the test ends first (t.Context), without failing it.
		c.expired.Store(errors.Is(ctx.Err(), context.DeadlineExceeded))
		tree := treeOf(c.Process.Pid)
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		tree.kill()
		return nil
	}
	// Output a process it started still holds once it has exited waits no
	// longer than the command itself.
	c.WaitDelay = c.limit
	return c
}

// wait waits for c to exit, as exec.Cmd.Wait does, and fails t if c was
// killed at the deadline instead.
func (c *boundedCmd) wait(t testing.TB) error {
	t.Helper()
	err := c.Wait()
	c.failIfExpired(t)
	return err
}

func (c *boundedCmd) failIfExpired(t testing.TB) {
	t.Helper()
	if c.expired.Load() {
		t.Fatalf("gave up waiting for the exit of %s %s after %v: killed it and the processes it started",
			filepath.Base(c.Path), strings.Join(c.Args[1:], " "), c.limit.Round(time.Second))
	}
}

// A processTree is a process and its descendants as pidfds: killed later,
// they reach these processes even if one's pid has been reused since.
type processTree []int

// treeOf is pid and its descendants as they are now. The kernel has no
// list of descendants (no /proc/PID/task/TID/children here): /proc gives
// each process's parent.
func treeOf(pid int) processTree {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it has exited since
		}
		// "PID (COMMAND) STATE PPID …": COMMAND may hold anything, ")" too.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		if parent, err := strconv.Atoi(fields[1]); err == nil {
			children[parent] = append(children[parent], child)
		}
	}
	var tree processTree
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		if fd, err := unix.PidfdOpen(queue[0], 0); err == nil {
			tree = append(tree, fd)
		}
		queue = append(queue, children[queue[0]]...)
	}
	return tree
}

// kill kills what is still running of the tree, parents first (a killed
// parent starts no more), and releases the pidfds.
func (tree processTree) kill() {
	for _, fd := range tree {
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		unix.Close(fd)
	}
}

// bounded gives conn the deadline of a test's wait, so that a read or a
// write that nothing answers fails with os.ErrDeadlineExceeded, and closes
// it when the test ends.
func bounded[C qrexec.Conn](t testing.TB, conn C) C {
	conn.SetDeadline(qrexec.WaitDeadline(t))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// call makes a call on conn from the test itself: the exit code is the
// remote status, or the refusal code.
func call(conn qrexec.Conn, t qrexec.MsgType, req qrexec.Request, s qrexec.Streams) (int, error) {
	err := qrexec.Start(conn, t, req)
	if refused, ok := errors.AsType[*qrexec.RefusedError](err); ok {
		return refused.Code, err
	}
	if err != nil {
		return qrexec.ExitFailure, err
	}
	return qrexec.Run(conn, s)
}

// dial connects to a qrexec address, bounded.
func dial(t testing.TB, addr string) qrexec.Conn {
	t.Helper()
	conn, err := qrexec.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	return bounded(t, conn)
}

// StartPiped starts nothing when a pipe could not be made (EMFILE under a
// flood), and closes the pipes that were: a service started anyway would
// run with no caller and no one waiting for it.
func TestStartPipedAfterAPipeFailed(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	cmd := exec.Command("/bin/sh", "-c", "touch "+marker)
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	failed := errors.New("too many open files")
	err := qrexec.StartPiped(cmd, err1, err2, failed)
	if !errors.Is(err, failed) || cmd.Process != nil {
		t.Fatalf("StartPiped: %v, process %v; want the pipe's error and nothing started", err, cmd.Process)
	}
	if _, err := stdin.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("writing to the stdin pipe: %v, want it closed", err)
	}
	if _, err := stdout.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("reading the stdout pipe: %v, want it closed", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the command ran: %v", err)
	}
	started := exec.Command("/bin/true")
	if err := qrexec.StartPiped(started); err != nil {
		t.Errorf("StartPiped with no pipe errors: %v", err)
	} else if err := started.Wait(); err != nil {
		t.Errorf("the command StartPiped started: %v", err)
	}
}
