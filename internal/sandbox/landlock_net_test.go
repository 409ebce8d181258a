package sandbox

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// ownSocket is the TCP socket helperProcess makes before Confine for
// "tcp-bind-own-socket"; -1 when the action runs unconfined, in the test process.
var ownSocket = -1

func init() {
	actions["tcp-bind-own-socket"] = func(helperCase) error {
		fd := ownSocket
		if fd < 0 {
			var err error
			if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
				return err
			}
		}
		defer unix.Close(fd)
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	}
}

// With Landlock ABI 4 the confined process cannot use TCP even on a socket it
// already holds (qfile.md, "Receiver rules": "no network sockets"; landlock.go:
// "a second wall behind seccomp's socket ban"): binding one, which works
// unconfined, is refused by Landlock (EACCES).
func TestConfineClosesTCPOnAnOwnSocket(t *testing.T) {
	requireKernelSandbox(t)
	if landlockABI() < 4 {
		t.Skip("this kernel's Landlock does not govern TCP (ABI 4, Linux 6.7)")
	}
	c := sandboxDirs(t)
	if got := outcome(actions["tcp-bind-own-socket"](c)); got != "ok" {
		t.Skipf("unconfined bind: %s: the test environment cannot show the refusal", got)
	}
	c.Action = "tcp-bind-own-socket"
	_, got, stderr := runConfined(t, c, nil)
	if got != "EACCES" {
		t.Errorf("confined bind on an own TCP socket: %q, want EACCES (stderr: %s)", got, strings.TrimSpace(stderr))
	}
}
