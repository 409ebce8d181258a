package qrexec

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestVsockListenWithoutDevVsock: the shipped units run the daemon and the
// agent with PrivateDevices=yes, a /dev without /dev/vsock, and both must
// still listen on vsock. The listener is made on a thread of its own whose
// mount namespace has an empty /dev; it needs no vsock loopback (only
// AF_VSOCK sockets), so it runs where the conformance suite's vsock
// transport is skipped.
func TestVsockListenWithoutDevVsock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a private /dev needs root")
	}
	if fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0); err != nil {
		t.Skipf("no AF_VSOCK sockets here: %v", err)
	} else {
		unix.Close(fd)
	}
	type result struct {
		addr net.Addr
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, with its mount namespace, ends with
		// this goroutine instead of going back to the scheduler.
		runtime.LockOSThread()
		done <- func() result {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return result{err: err}
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return result{err: err}
			}
			if err := unix.Mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755"); err != nil {
				return result{err: err}
			}
			if _, err := os.Stat("/dev/vsock"); !errors.Is(err, os.ErrNotExist) {
				return result{err: errors.New("/dev/vsock is still there")}
			}
			l, err := Listen("vsock:0")
			if err != nil {
				return result{err: err}
			}
			defer l.Close()
			return result{addr: l.Addr()}
		}()
	}()
	if r := Await(t, "the vsock listener made without /dev/vsock", done); r.err != nil {
		t.Fatalf("listening on vsock without /dev/vsock: %v", r.err)
	} else {
		t.Logf("listened on %v", r.addr)
	}
}

// TestListenSaysWhyItCannot: a Unix socket's path that holds another kind of
// file, or whose directory is missing, is named as such, not as Go's "bind:
// address already in use" or "no such file or directory"; a stale socket is
// replaced.
func TestListenSaysWhyItCannot(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		notSocket: "a file that is not a socket is there",
		filepath.Join(dir, "nodir", "agent.sock"): "its directory does not exist",
	} {
		if l, err := Listen(path); err == nil || !strings.Contains(err.Error(), want) {
			if l != nil {
				l.Close()
			}
			t.Errorf("Listen(%s): %v; want an error saying %q", path, err, want)
		}
	}
	stale := filepath.Join(dir, "stale.sock")
	for range 2 {
		l, err := Listen(stale)
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		// Closing a net.UnixListener removes its file; a process that died leaves it.
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
	}
}

// A command's connection is closed once (transport.go): a caller whose
// stdin failed closes it while its own deferred Close may follow, and the
// second Close neither fails ("file already closed") nor waits for, or
// kills, the child's process group again, whose id may be another's by then.
func TestCommandConnClosesOnce(t *testing.T) {
	conn, err := dialCommand("cat >/dev/null", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Errorf("a second Close: %v, want the first's result", err)
	}
}
