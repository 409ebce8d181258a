package qrexec_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/testbin"
)

// The commands' own checks of their arguments and configuration.

func TestDaemonWithoutDomainsSaysSo(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.conf")
	writeFile(t, empty, "# no domain yet\n", 0o644)
	for _, file := range []string{filepath.Join(dir, "missing.conf"), empty} {
		cmd := exec.Command(testbin.Path(t, "qrexec-daemon"), "--domains", file, "--sockdir", filepath.Join(dir, "sock"))
		got := run(t, cmd, "")
		if got.code != 1 || !strings.Contains(got.stderr, "no domains to serve") || !strings.Contains(got.stderr, file) {
			t.Errorf("qrexec-daemon --domains %s: %+v", file, got)
		}
	}
}

// TestDaemonUsageErrors: settings the daemon cannot work with are usage
// errors that say what is wrong, found before anything is opened.
func TestDaemonUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-calls", "0"}, "qrexec-daemon: --max-calls 0: at least 1 call per domain must be allowed\n"},
		{[]string{"--no-unix"}, "qrexec-daemon: nothing to listen on: --no-unix without --vsock-port\n"},
		{[]string{"serve"}, "qrexec-daemon: unexpected argument \"serve\": every setting is an option\n"},
	} {
		got := run(t, exec.Command(testbin.Path(t, "qrexec-daemon"), append(c.args, "--domains", "/nonexistent")...), "")
		if got.code != 2 || got.stdout != "" || !strings.HasPrefix(got.stderr, c.want+"Usage: qrexec-daemon") {
			t.Errorf("qrexec-daemon %s: %+v", strings.Join(c.args, " "), got)
		}
	}
}

// TestStdioRequestTimeout: on stdio (ssh, a serial line) a caller that
// never sends its request is cut off at --request-timeout, as on sockets.
func TestStdioRequestTimeout(t *testing.T) {
	lab := newTestLab(t, transports[1])
	cmd := exec.Command(testbin.Path(t, "qrexec-daemon"), append(lab.daemonArgs("--request-timeout", "200ms"), "--stdio", "vm1")...)
	silent, err := cmd.StdinPipe() // held open, never written
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	select {
	case <-ended:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-ended
		t.Fatal("qrexec-daemon --stdio still waiting for the request after 20s")
	}
	waitForLog(t, lab, "dom0", "i/o timeout")
}

// TestStdioNeedsLog: over ssh the daemon's stderr goes back to the calling
// domain, so --stdio without --log is a usage error, not dom0's log sent to
// the caller.
func TestStdioNeedsLog(t *testing.T) {
	lab := newTestLab(t, transports[1])
	args := []string{"--stdio", "vm1", "--domains", lab.domainsFile, "--policy-dir", lab.policyDir, "--service-dir", lab.serviceDirs["dom0"]}
	got := run(t, exec.Command(testbin.Path(t, "qrexec-daemon"), args...), "")
	if got.code != 2 || !strings.Contains(got.stderr, "--stdio needs --log") {
		t.Errorf("qrexec-daemon --stdio without --log: %+v", got)
	}
}

// TestCommandUserErrors: a user name the protocol cannot carry is a usage
// error; a user the domain lacks is a qrexec failure naming the domain and
// the user.
func TestCommandUserErrors(t *testing.T) {
	lab := newTestLab(t, transports[0])
	client := func(arg string) result {
		return run(t, exec.Command(testbin.Path(t, "qrexec-client"), "--domains", lab.domainsFile, "--sockdir", lab.sockDir, "-d", "vm2", arg), "")
	}
	for _, got := range []result{client("bad user:echo"), client(":echo"), lab.runInVM2(t, "", "--user", "-x", "vm2", "echo")} {
		if got.code != 2 || !strings.Contains(got.stderr, "a user name is 1-32 characters") {
			t.Errorf("invalid user: %+v", got)
		}
	}
	got := client("nosuchuser:echo")
	if got.code != qrexec.ExitFailure || !strings.Contains(got.stderr, "vm2: the agent did not start the command as user nosuchuser: no such user there") {
		t.Errorf("a user vm2 lacks: %+v", got)
	}
}
