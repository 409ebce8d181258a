package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
)

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// Mistakes a person running the service by hand makes get a usage error (2) that says what
// is wrong, before any configuration or session is touched; --help goes to stdout.
func TestUsage(t *testing.T) {
	bin := testbin.Path(t, "pedos-receive-updates")
	root := t.TempDir()
	for _, tc := range []struct {
		env              []string
		args             []string
		code             int
		stdout, inStderr string
	}{
		{nil, []string{"--help"}, 0, "usage: pedos-receive-updates", ""},
		{nil, []string{}, 2, "", "usage: pedos-receive-updates"},
		{[]string{"QREXEC_REMOTE_DOMAIN=sys-firewall"}, []string{"--root", root}, 2, "", "the last argument is always the session id"},
		{[]string{"QREXEC_REMOTE_DOMAIN=sys-firewall"}, []string{"--bogus", "x"}, 2, "", "pedos-receive-updates: flag provided but not defined: -bogus\npedos-receive-updates: the last argument"},
		{nil, []string{"--root", root, "0123456789abcdef0123456789abcdef"}, 2, "", "QREXEC_REMOTE_DOMAIN is not set"},
		// Run by qrexec (PedOS.ReceiveUpdates+-h), "-h" is the caller's session id: no usage
		// on stdout, the status channel; this caller is refused before any file is touched
		// (dom0's real updates.conf is only read).
		{[]string{"QREXEC_REMOTE_DOMAIN=pedos-test-not-the-updatevm"}, []string{"-h"}, 126, "", "refused"},
		// PedOS.ReceiveUpdates called without +ID: refused (126), no usage text in dom0's log.
		{[]string{"QREXEC_REMOTE_DOMAIN=sys-firewall"}, []string{}, 126, "", "refused the call from sys-firewall: it names no session"},
		// A caller's name is dom0's qrexec's, but is printed as it would be logged all the same.
		{[]string{"QREXEC_REMOTE_DOMAIN=work\x1b[2J"}, []string{}, 126, "", `refused the call from "work\x1b[2J": it names no session`},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
		stdout, stderr, code := testbin.Run(t, cmd)
		// The usage once, with what was wrong first.
		if code != tc.code || !strings.HasPrefix(stdout, tc.stdout) || tc.stdout == "" && stdout != "" || !strings.Contains(stderr, tc.inStderr) ||
			strings.Count(stdout+stderr, "usage: ") > 1 {
			t.Errorf("%q: exit %d, stdout %.40q, stderr %.100q; want exit %d, stdout starting %q, stderr with %q",
				tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.inStderr)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("a usage error left %d entries in the root", len(entries))
	}
}

// The build time the Makefile stamps (-X main.buildTime) reaches the
// receive as a floor for dom0's clock (M9), not only the warning.
func TestBuildTimeReachesTheReceive(t *testing.T) {
	saved := buildTime
	t.Cleanup(func() { buildTime = saved })
	buildTime = "2031-02-03T04:05:06Z"
	if got := receiver(dom0.Config{}, "").BuildTime; !got.Equal(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)) {
		t.Errorf("the receive's build time is %v, want the stamped 2031-02-03T04:05:06Z", got)
	}
}
