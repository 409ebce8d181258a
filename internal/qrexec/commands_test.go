package qrexec_test

import (
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/testbin"
)

// The commands' own checks of their arguments and configuration.

func TestDaemonWithoutDomainsSaysSo(t *testing.T) {
	dir := t.TempDir()
	empty, onlyDom0 := filepath.Join(dir, "empty.conf"), filepath.Join(dir, "dom0.conf")
	writeFile(t, empty, "# no domain yet\n", 0o644)
	writeFile(t, onlyDom0, "dom0\n", 0o644)
	for file, why := range map[string]string{
		filepath.Join(dir, "missing.conf"): "no such file",
		empty:                              "lists no domain other than dom0",
		onlyDom0:                           "lists no domain other than dom0",
	} {
		cmd := command(t, "qrexec-daemon", "--domains", file, "--sockdir", filepath.Join(dir, "sock"))
		got := run(t, cmd, "")
		if got.code != 1 || !strings.Contains(got.stderr, "no domains to serve") || !strings.Contains(got.stderr, file) || !strings.Contains(got.stderr, why) {
			t.Errorf("qrexec-daemon --domains %s: %+v", file, got)
		}
	}
}

// TestDaemonWarnsOfAPolicyItCannotLoad: the daemon starts (the policy is
// read again for every call, so it can be fixed without a restart) but
// says at once that every call will be refused, and refuses them.
func TestDaemonWarnsOfAPolicyItCannotLoad(t *testing.T) {
	lab := newTestLab(t, transport{"unix", noSettings, func(testing.TB, *testLab) {}})
	lab.startUnixDaemon(t, "--policy-dir", filepath.Join(lab.dir, "nonexistent"))
	waitForLog(t, lab, "dom0", "the policy cannot be loaded: every call is refused until it is fixed")
	if !strings.Contains(lab.log(t, "dom0"), "nonexistent: no such file or directory") {
		t.Errorf("the warning does not say why:\n%s", lab.log(t, "dom0"))
	}
	if got := lab.call(t, "", "vm2", "test.Echo"); got.code != qrexec.ExitRefused {
		t.Errorf("a call with no policy: %+v", got)
	}
}

// TestClientUsageErrors: qrexec-client and pedos-run say what is wrong
// with their arguments before the usage.
func TestClientUsageErrors(t *testing.T) {
	for _, c := range []struct {
		command string
		args    []string
		want    string
	}{
		{"qrexec-client", []string{"-d", "sys-firewall", "id"}, `qrexec-client: "id": want USER:COMMAND`},
		{"qrexec-client", []string{"-d", "bad/dom", "root:id"}, `qrexec-client: -d "bad/dom": a domain name is a letter`},
		{"qrexec-client", []string{"root:id"}, "qrexec-client: -d DOMAIN is required"},
		{"qrexec-client", []string{"-d", "vm2", "root:id", "more"}, "qrexec-client: want one USER:COMMAND argument, got 2"},
		{"pedos-run", []string{"bad/dom", "id"}, `pedos-run: domain "bad/dom": a domain name is a letter`},
		{"pedos-run", []string{"vm2", "--"}, "pedos-run: want DOMAIN and COMMAND"},
		{"pedos-run", nil, "pedos-run: want DOMAIN and COMMAND"},
		// An empty command: the agent would refuse it (126) and say why only in its log.
		{"qrexec-client", []string{"-d", "vm2", "root: "}, `qrexec-client: "root: ": the COMMAND after USER: is empty`},
		{"pedos-run", []string{"vm2", ""}, "pedos-run: COMMAND is empty"},
		// A negative timeout is no limit nobody asked for.
		{"pedos-run", []string{"--timeout", "-1s", "vm2", "id"}, "pedos-run: --timeout -1s is negative"},
		{"qrexec-client", []string{"-d", "vm2", "--timeout", "-5m", "root:id"}, "qrexec-client: --timeout -5m0s is negative"},
	} {
		got := run(t, command(t, c.command, c.args...), "")
		if got.code != 2 || got.stdout != "" || !strings.HasPrefix(got.stderr, c.want) || !strings.Contains(got.stderr, "\nUsage: "+c.command) {
			t.Errorf("%s %s: %+v", c.command, strings.Join(c.args, " "), got)
		}
	}
}

// TestRunEndOfOptions: "--" after DOMAIN ends pedos-run's options and is
// not part of the command (the shell would take it for an option).
func TestRunEndOfOptions(t *testing.T) {
	lab := newTestLab(t, transports[0])
	for _, args := range [][]string{{"vm2", "--", "echo", "-n", "--"}, {"--", "vm2", "echo", "-n", "--"}} {
		if got := lab.runInVM2(t, "", args...); got.code != 0 || got.stdout != "--" || got.stderr != "" {
			t.Errorf("pedos-run %s: %+v", strings.Join(args, " "), got)
		}
	}
}

// TestUsageErrors: settings the daemon and the agent cannot work with are
// usage errors that say what is wrong, found before anything is opened.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		command string
		args    []string
		want    string
	}{
		{"qrexec-daemon", []string{"--max-calls", "0"}, "--max-calls 0: at least 1 call per domain must be allowed\n"},
		{"qrexec-daemon", []string{"--no-unix"}, "nothing to listen on: --no-unix without --vsock-port\n"},
		{"qrexec-daemon", []string{"serve"}, "unexpected argument \"serve\": every setting is an option\n"},
		{"qrexec-daemon", []string{"--request-timeout", "0"}, "--request-timeout 0s: the request phase needs some time, or every call fails\n"},
		{"qrexec-daemon", []string{"--request-timeout", "-1s"}, "--request-timeout -1s: the request phase needs some time, or every call fails\n"},
		{"qrexec-agent", []string{"--request-timeout", "0"}, "--request-timeout 0s: the request phase needs some time, or every call fails\n"},
		// Context ids and ports are 32 bits: a larger one would stand for another.
		{"qrexec-agent", []string{"--dom0-cid", "4294967298"}, "--dom0-cid 4294967298: a vsock context id is below 2^32\n"},
		{"qrexec-daemon", []string{"--vsock-port", "4294967296"}, "--vsock-port 4294967296: a vsock port is below 2^32\n"},
		{"qrexec-agent", []string{"serve"}, "unexpected argument \"serve\": every setting is an option\n"},
		{"qrexec-agent", []string{"--listen", "vsock:abc"}, `--listen "vsock:abc": not an address to listen on: want vsock:PORT, PORT a number below 2^32` + "\n"},
		{"qrexec-agent", []string{"--listen", "exec:ssh x"}, `--listen "exec:ssh x": not an address to listen on: a command (exec:) is only called` + "\n"},
	} {
		// Where the command would look first, were the arguments good.
		nowhere := map[string][]string{"qrexec-daemon": {"--domains", "/nonexistent"}, "qrexec-agent": {"--listen", "/nonexistent/agent.sock"}}[c.command]
		if slices.Contains(c.args, "--listen") {
			nowhere = nil
		}
		got := run(t, command(t, c.command, append(c.args, nowhere...)...), "")
		if got.code != 2 || got.stdout != "" || !strings.HasPrefix(got.stderr, c.command+": "+c.want+"Usage: "+c.command) {
			t.Errorf("%s %s: %+v", c.command, strings.Join(c.args, " "), got)
		}
	}
}

// Under --stdio the daemon's stderr goes back to the calling domain: why
// it cannot serve (here, its domains file, or a --stdio naming dom0, which
// is never a caller) is in dom0's log, not there.
func TestStdioStartFailureStaysInDom0(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.conf")
	domains := filepath.Join(dir, "domains.conf")
	if err := os.WriteFile(domains, []byte("vm1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ domain, domains, why string }{
		{"vm1", missing, missing},
		{"dom0", domains, `--stdio \"dom0\": not a domain of ` + domains},
	} {
		logFile := filepath.Join(t.TempDir(), "qrexec.log")
		got := run(t, command(t, "qrexec-daemon", "--stdio", c.domain, "--log", logFile, "--domains", c.domains), "")
		if got.code != 1 || got.stdout != "" || strings.Contains(got.stderr, c.domains) || !strings.Contains(got.stderr, "the reason is in dom0's log") {
			t.Errorf("qrexec-daemon --stdio %s --domains %s: %+v", c.domain, c.domains, got)
		}
		if log, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(log), c.why) {
			t.Errorf("dom0's log does not say %s (%v):\n%s", c.why, err, log)
		}
	}
}

// TestStdioRequestTimeout: on stdio (ssh, a serial line) a caller that
// never sends its request is cut off at --request-timeout, as on sockets.
func TestStdioRequestTimeout(t *testing.T) {
	lab := newTestLab(t, transports[1])
	cmd := command(t, "qrexec-daemon", append(lab.daemonArgs("--request-timeout", "200ms"), "--stdio", "vm1")...)
	silent, err := cmd.StdinPipe() // held open, never written
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd.wait(t)
	waitForLog(t, lab, "dom0", "i/o timeout")
}

// TestStdioNeedsLog: over ssh the daemon's stderr goes back to the calling
// domain, so --stdio without --log is a usage error, not dom0's log sent to
// the caller.
func TestStdioNeedsLog(t *testing.T) {
	lab := newTestLab(t, transports[1])
	args := []string{"--stdio", "vm1", "--domains", lab.domainsFile, "--policy-dir", lab.policyDir, "--service-dir", lab.serviceDirs["dom0"]}
	got := run(t, command(t, "qrexec-daemon", args...), "")
	if got.code != 2 || !strings.Contains(got.stderr, "--stdio needs --log") {
		t.Errorf("qrexec-daemon --stdio without --log: %+v", got)
	}
}

// TestCommandAgentThatDoesNotAnswer: dom0's own command call (pedos-run,
// qrexec-client) gives up on an agent that accepts the connection and
// never answers, as the daemon does when it relays a call (C7), with or
// without --timeout, instead of waiting for ever (qrexec black-box).
func TestCommandAgentThatDoesNotAnswer(t *testing.T) {
	sockDir := t.TempDir()
	silentAgent(t, sockDir, "vm9")
	for _, timeout := range []time.Duration{0, time.Hour} {
		call := qrexec.CommandCall{DomainsFile: filepath.Join(sockDir, "no-domains.conf"), SockDir: sockDir, Domain: "vm9",
			User: "DEFAULT", Command: "true", Timeout: timeout, AnswerTimeout: 200 * time.Millisecond}
		type outcome struct {
			code int
			err  error
		}
		done := make(chan outcome, 1)
		go func() {
			code, err := call.Run(qrexec.Streams{})
			done <- outcome{code, err}
		}()
		got := qrexec.Await(t, "the call's end", done)
		if got.code != qrexec.ExitFailure || got.err == nil || !strings.Contains(got.err.Error(), "the agent did not answer within 200ms") {
			t.Errorf("--timeout %v: exit %d, %v; want 125, the agent did not answer", timeout, got.code, got.err)
		}
	}
}

// silentAgent listens as vm's agent below sockDir, accepts connections and
// never writes to them (C7), until the test ends.
func silentAgent(t *testing.T, sockDir, vm string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(sockDir, vm), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(sockDir, vm, "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never written, until the listener closes
		}
	}()
}

// TestCommandUserErrors: a user name the protocol cannot carry is a usage
// error; a user the domain lacks is a qrexec failure naming the domain and
// the user.
func TestCommandUserErrors(t *testing.T) {
	lab := newTestLab(t, transports[0])
	client := func(arg string) result {
		return run(t, command(t, "qrexec-client", "--domains", lab.domainsFile, "--sockdir", lab.sockDir, "-d", "vm2", arg), "")
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
	// dom0 has no agent: said so, not "cannot reach the agent of dom0".
	got = run(t, command(t, "qrexec-client", "--domains", lab.domainsFile, "--sockdir", lab.sockDir, "-d", "dom0", "root:true"), "")
	if got.code != qrexec.ExitFailure || !strings.Contains(got.stderr, "dom0 is where this runs: it has no qrexec agent") {
		t.Errorf("a command for dom0: %+v", got)
	}
}

// TestPolicyEval: pedos-policy-eval prints the verdict as the daemon would
// reach it, with notify= and autostart= reported (the daemon logs them),
// says which field of the call is invalid, and denies a call from a domain
// the daemon does not serve.
func TestPolicyEval(t *testing.T) {
	lab := newTestLab(t, transports[0])
	lab.setPolicy(t, "test.Echo * @anyvm dom0 allow notify=yes autostart=yes\n"+
		"test.Notify * @anyvm @anyvm allow user=u autostart=yes notify=yes\n"+
		"test.Deny * @anyvm @anyvm deny notify=yes\n"+
		"* * @anyvm @anyvm allow\n* * @anyvm dom0 allow\n")
	for _, c := range []struct {
		args           []string
		stdout, stderr string
		code           int
	}{
		{[]string{"vm1", "vm2", "test.Notify"}, "allow target=vm2 user=u notify=yes autostart=yes\n", "", 0},
		{[]string{"vm1", "vm2", "test.Other"}, "allow target=vm2\n", "", 0},
		{[]string{"vm1", "vm2", "test.Deny+x"}, "deny notify=yes\n", "denied by policy at " + lab.policyDir + "/50-test.policy:3\n", 126},
		{[]string{"1vm", "vm2", "test.Other"}, "deny\n", `invalid source "1vm": a domain name is a letter`, 126},
		{[]string{"vm1", "vm2;x", "test.Other"}, "deny\n", `invalid target "vm2;x": a target is a domain name`, 126},
		{[]string{"vm1", "vm2", "t.E;v"}, "deny\n", `invalid service name "t.E;v": a service name is 1-64 characters`, 126},
		{[]string{"vm1", "vm2", "test.Other+a/b"}, "deny\n", `invalid service argument "a/b": a service argument is at most 64`, 126},
		{[]string{"vm1", "vm2", strings.Repeat("s", 100)}, "deny\n", `invalid service name "` + strings.Repeat("s", 64) + `"…(100 bytes): `, 126},
		{[]string{"vm-typo", "vm2", "test.Other"}, "deny\n", "source vm-typo is not a domain of " + lab.domainsFile + ": the daemon serves no such domain\n", 126},
		{[]string{"vm1", "vm-typo", "test.Other"}, "deny\n", "warning: target vm-typo is not a domain of " + lab.domainsFile + "\npedos-policy-eval: no such domain", 126},
		{[]string{"vm1", "@dispvm:tpl", "test.Other"}, "deny\n", "warning: target tpl is not a domain of", 126},
		{[]string{"vm1", "vm2"}, "", "want SOURCE TARGET SERVICE[+ARG], got 2 argument(s)", 2},
	} {
		args := append([]string{"--policy-dir", lab.policyDir, "--domains", lab.domainsFile}, c.args...)
		got := run(t, command(t, "pedos-policy-eval", args...), "")
		stderrOK := got.stderr == ""
		if c.stderr != "" {
			stderrOK = strings.HasPrefix(got.stderr, "pedos-policy-eval: "+c.stderr)
		}
		if got.code != c.code || got.stdout != c.stdout || !stderrOK {
			t.Errorf("pedos-policy-eval %s: %+v, want stdout %q, stderr %q, exit %d", strings.Join(c.args, " "), got, c.stdout, c.stderr, c.code)
		}
	}
	broken := filepath.Join(lab.dir, "broken.conf")
	writeFile(t, broken, "vm1 colour=blue\n", 0o644)
	got := run(t, command(t, "pedos-policy-eval", "--domains", broken, "vm1", "dom0", "test.Echo"), "")
	if got.code != 2 || !strings.Contains(got.stderr, broken+":1: unknown key") {
		t.Errorf("a broken domains configuration: %+v", got)
	}

	if got := lab.call(t, "x", "dom0", "test.Echo"); got.code != 0 {
		t.Fatalf("call: %+v", got)
	}
	waitForLog(t, lab, "dom0", `to=dom0 rule=`+lab.policyDir+`/50-test.policy:1 user="" notify=true autostart=true`)
}

// TestClientVMMessages: qrexec-client-vm says which name dom0 refused as
// invalid (dom0 still decides), checks LOCAL_PROGRAM before calling, and
// names the daemon's socket it cannot reach.
func TestClientVMMessages(t *testing.T) {
	lab := newTestLab(t, transports[0])
	for _, c := range []struct {
		args   []string
		stderr string
		code   int
	}{
		{[]string{"dom0", "t.E;v"}, `qrexec-client-vm: call refused: invalid service name "t.E;v": a service name is 1-64 characters`, 126},
		{[]string{"vm2;x", "test.Echo"}, `qrexec-client-vm: call refused: invalid target "vm2;x": a target is`, 126},
		{[]string{"dom0", "test.Echo+a/b"}, `qrexec-client-vm: call refused: invalid service argument "a/b"`, 126},
		{[]string{"dom0", "test.Denied"}, "qrexec-client-vm: test.Denied to dom0: call refused\n", 126},
		// Too long for a request: refused here as invalid (not sent), as dom0 would refuse it.
		{[]string{"dom0", "test.Echo+" + strings.Repeat("a", 70000)}, `qrexec-client-vm: call refused: invalid service argument "` + strings.Repeat("a", 64) + `"…(70000 bytes)`, 126},
		{[]string{"dom0", "test.Arg+neverstarted", "/nonexistent/program"}, `qrexec-client-vm: LOCAL_PROGRAM: exec: "/nonexistent/program": stat /nonexistent/program: no such file or directory (no call made)`, 125},
		{[]string{"dom0"}, "qrexec-client-vm: want TARGET and SERVICE[+ARG], got 1 argument(s)\nUsage: qrexec-client-vm", 2},
	} {
		if got := lab.call(t, "", c.args...); got.code != c.code || got.stdout != "" || !strings.HasPrefix(got.stderr, c.stderr) {
			t.Errorf("qrexec-client-vm %s: %+v, want stderr %q, exit %d", strings.Join(c.args, " "), got, c.stderr, c.code)
		}
	}
	log := lab.log(t, "dom0")
	if n := strings.Count(log, "invalid request refused"); n != 3 {
		t.Errorf("dom0 refused %d invalid requests, want the 3 sent:\n%s", n, log)
	}
	if strings.Contains(log, "neverstarted") {
		t.Errorf("a call was made for a LOCAL_PROGRAM that does not exist:\n%s", log)
	}
	lab.callerAddr = filepath.Join(lab.dir, "nowhere", "daemon.sock")
	want := "qrexec-client-vm: cannot reach the qrexec daemon at " + lab.callerAddr + ": no such file or directory (is it running?"
	if got := lab.call(t, "", "dom0", "test.Echo"); got.code != qrexec.ExitFailure || !strings.HasPrefix(got.stderr, want) {
		t.Errorf("an unreachable daemon: %+v, want %q", got, want)
	}
}

// TestClientUnreachableDomain: qrexec-client and pedos-run for a domain
// whose agent does not listen name the domain and the likely causes, not
// only a missing socket file.
func TestClientUnreachableDomain(t *testing.T) {
	// A socket directory that is missing altogether (the daemon's unit
	// stopped, and its runtime directory went) is said the same way.
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "gone")} {
		for name, args := range map[string][]string{
			"qrexec-client": {"-d", "nosuchvm", "root:true"},
			"pedos-run":     {"nosuchvm", "true"},
		} {
			args = append([]string{"--domains", filepath.Join(dir, "none.conf"), "--sockdir", dir}, args...)
			got := run(t, command(t, name, args...), "")
			want := name + ": qrexec: cannot reach the agent of nosuchvm: open " + filepath.Join(dir, "nosuchvm", "agent.sock") + ": no such file or directory (is nosuchvm running"
			if got.code != qrexec.ExitFailure || got.stdout != "" || !strings.HasPrefix(got.stderr, want) {
				t.Errorf("%s %s: %+v, want %q", name, strings.Join(args, " "), got, want)
			}
		}
	}
}

// TestOutputWriteErrorFails: a caller whose output cannot be written (a
// full disk: /dev/full) does not exit with the service's 0, as if the
// output were saved; it says why and exits 125. Its own reader going away
// (EPIPE) still ends it as a pipe would.
func TestOutputWriteErrorFails(t *testing.T) {
	lab := newTestLab(t, transports[0])
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	cmd := command(t, "qrexec-client-vm", "dom0", "test.Echo")
	cmd.Env = append(os.Environ(), "PEDOS_QREXEC_SOCKET="+lab.callerAddr)
	cmd.Stdin = strings.NewReader(strings.Repeat("x", 1<<20))
	cmd.Stdout = full
	var stderr strings.Builder
	cmd.Stderr = &stderr
	_ = cmd.Run()
	cmd.failIfExpired(t)
	if code := cmd.ProcessState.ExitCode(); code != qrexec.ExitFailure || !strings.Contains(stderr.String(), "the call's output could not be written: write /dev/stdout: no space left on device") {
		t.Errorf("output to /dev/full: exit %d, stderr %q; want 125 saying the output could not be written", code, stderr.String())
	}
}

// TestInputReadErrorFails: a caller whose stdin cannot be read (a terminal
// gone: EIO; a directory: EISDIR) does not wait for ever for an EOF it will
// never send, nor send one (the service would act on part of its input): it
// ends the call, says why and exits 125.
// Over the stdio transport too, where the caller's connection is a child
// (exec:), which the hang-up and the caller's own Close both end.
func TestInputReadErrorFails(t *testing.T) {
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			lab := newTestLab(t, tr)
			dir, err := os.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer dir.Close()
			for name, c := range map[string]*boundedCmd{
				"qrexec-client-vm": command(t, "qrexec-client-vm", "dom0", "test.Echo"),
				"pedos-run":        command(t, "pedos-run", "--domains", lab.domainsFile, "--sockdir", lab.sockDir, "vm2", "cat"),
			} {
				c.Env = append(os.Environ(), "PEDOS_QREXEC_SOCKET="+lab.callerAddr)
				c.Stdin = dir
				var stderr strings.Builder
				c.Stderr = &stderr
				_ = c.Run()
				c.failIfExpired(t)
				if code := c.ProcessState.ExitCode(); code != qrexec.ExitFailure || !strings.Contains(stderr.String(), "the call's input could not be read, so the call was ended: read ") || !strings.Contains(stderr.String(), "is a directory") {
					t.Errorf("%s with a directory as stdin: exit %d, stderr %q; want 125 saying the input could not be read", name, code, stderr.String())
				}
			}
		})
	}
}

// A stdin that is a socket is spliced, not copied, and a read error there
// ends the call all the same: a Unix socket whose peer closed it with data
// unread reads ECONNRESET, which is no EOF (the service would act on part
// of its input), so the call is ended, said, and exits 125 (qrexec.md).
func TestInputSocketResetFails(t *testing.T) {
	lab := newTestLab(t, transports[0])
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	stdin, peer := os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "peer")
	defer stdin.Close()
	// Unread by the peer when it closes: stdin's reads fail with ECONNRESET.
	if _, err := stdin.WriteString("never read"); err != nil {
		t.Fatal(err)
	}
	peer.Close()
	c := command(t, "pedos-run", "--domains", lab.domainsFile, "--sockdir", lab.sockDir, "vm2", "cat")
	c.Stdin = stdin
	var stderr strings.Builder
	c.Stderr = &stderr
	_ = c.Run()
	c.failIfExpired(t)
	if code := c.ProcessState.ExitCode(); code != qrexec.ExitFailure || !strings.Contains(stderr.String(), "the call's input could not be read, so the call was ended: ") || !strings.Contains(stderr.String(), "connection reset by peer") {
		t.Errorf("stdin a socket reset by its peer: exit %d, stderr %q; want 125 saying the input could not be read", code, stderr.String())
	}
}

// pedos-run shows another domain's output as qvm-run does: on a terminal,
// what the terminal would act on (escape sequences, other control
// characters) is replaced by "_", so that the domain cannot clear dom0's
// screen or retitle its window; into a pipe or file it is passed as it is,
// unless --filter-escape-chars says otherwise.
func TestPedosRunFiltersEscapesOnATerminal(t *testing.T) {
	lab := newTestLab(t, transports[0])
	script := `printf 'A\033[2JB\n'; printf 'E\033]0;title\007\n' >&2`
	raw := result{"A\x1b[2JB\n", "E\x1b]0;title\a\n", 0}
	filtered := result{"A_[2JB\n", "E_]0;title_\n", 0}
	for _, c := range []struct {
		options []string
		want    result
	}{
		{nil, raw},
		{[]string{"--no-filter-escape-chars"}, raw},
		{[]string{"--filter-escape-chars"}, filtered},
	} {
		if got := lab.runInVM2(t, "", append(c.options, "vm2", script)...); got != c.want {
			t.Errorf("pedos-run %v into pipes: %+v, want %+v", c.options, got, c.want)
		}
	}
	// On a terminal, stdout or stderr alone (the other into a pipe, as in
	// pedos-run … | less): in a UTF-8 locale a rune is whole or "_" for
	// each byte, also one the call ends in the middle of; in another
	// locale nothing but ASCII is shown.
	for _, c := range []struct {
		name, locale, script string
		onTerminal           func(cmd *exec.Cmd, terminal *os.File, other io.Writer)
		shown, other         string
	}{
		{"stdout", "C.UTF-8", `printf 'A\033[2JBé\n'; printf 'E\033[31m\n' >&2`,
			func(cmd *exec.Cmd, terminal *os.File, other io.Writer) { cmd.Stdout, cmd.Stderr = terminal, other },
			"A_[2JBé\r\n", "E\x1b[31m\n"},
		{"stderr", "C.UTF-8", `printf 'A\033[2J\n'; printf 'E\033]0;title\007\nend\342\202' >&2`,
			func(cmd *exec.Cmd, terminal *os.File, other io.Writer) { cmd.Stdout, cmd.Stderr = other, terminal },
			"E_]0;title_\r\nend__", "A\x1b[2J\n"},
		{"not UTF-8", "C", `printf 'U\303\2332J\n'`,
			func(cmd *exec.Cmd, terminal *os.File, other io.Writer) { cmd.Stdout, cmd.Stderr = terminal, other },
			"U__2J\r\n", ""},
	} {
		master, terminal := testbin.OpenPTY(t)
		cmd := command(t, "pedos-run", "--domains", lab.domainsFile, "--sockdir", lab.sockDir, "vm2", c.script)
		cmd.Env = append(os.Environ(), "LC_ALL="+c.locale)
		var other strings.Builder
		cmd.Stdin = strings.NewReader("")
		c.onTerminal(cmd.Cmd, terminal, &other)
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		cmd.failIfExpired(t)
		terminal.Close()
		shown, _ := io.ReadAll(master) // EIO once the terminal's last holder closed it
		if string(shown) != c.shown || other.String() != c.other {
			t.Errorf("%s on a terminal: %q shown, %q into the pipe; want %q and %q", c.name, shown, other.String(), c.shown, c.other)
		}
	}
}

// --no-filter-escape-chars passes the output as it is also to a terminal,
// where the filter is otherwise on: the person asked for it.
func TestPedosRunNoFilterOnATerminal(t *testing.T) {
	lab := newTestLab(t, transports[0])
	master, terminal := testbin.OpenPTY(t)
	cmd := command(t, "pedos-run", "--domains", lab.domainsFile, "--sockdir", lab.sockDir, "--no-filter-escape-chars", "vm2", `printf 'A\033[2JB\n'`)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), terminal, io.Discard
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	cmd.failIfExpired(t)
	terminal.Close()
	shown, _ := io.ReadAll(master) // EIO once the terminal's last holder closed it
	if string(shown) != "A\x1b[2JB\r\n" {
		t.Errorf("--no-filter-escape-chars on a terminal: %q shown, want the output as it is", shown)
	}
}

// pedos-run's options go before DOMAIN: after it, where the command begins,
// one would run as the command and fail in the domain's shell with 2, the
// status of a usage error, as if pedos-run's; it is refused instead.
func TestPedosRunOptionAfterTheDomain(t *testing.T) {
	lab := newTestLab(t, transports[0])
	got := lab.runInVM2(t, "", "vm2", "--user", "root", "id")
	if got.code != 2 || got.stdout != "" || !strings.Contains(got.stderr, "--user comes after DOMAIN") {
		t.Errorf("pedos-run vm2 --user root id: %+v", got)
	}
}

// Which words after DOMAIN are pedos-run's own options misplaced, and which
// begin the command: -h and --help, and an option with its value after "="
// are pedos-run's (refused, exit 2); a command named as an option is but
// without its dash (timeout) runs in the domain, and whatever follows "--"
// is not pedos-run's to judge: it is the command, even one that begins with
// "-", which the domain's shell does not take for its own option (it looks
// for a command named --user: 127, not a shell usage error's 2). Two answers to one
// question (--filter-escape-chars and --no-filter-escape-chars) are a usage
// error too.
func TestPedosRunWordsAfterTheDomain(t *testing.T) {
	lab := newTestLab(t, transports[0])
	for _, c := range []struct {
		args    []string
		refused string // what the usage error says; "" for a command that runs
		stdout  string
		code    int
	}{
		{[]string{"vm2", "-h"}, "-h comes after DOMAIN", "", 2},
		{[]string{"vm2", "--help"}, "--help comes after DOMAIN", "", 2},
		{[]string{"vm2", "--user=root", "id"}, "--user=root comes after DOMAIN", "", 2},
		{[]string{"vm2", "timeout", "10", "echo", "ran"}, "", "ran\n", 0},
		{[]string{"vm2", "--", "--user", "root"}, "", "", 127},
		{[]string{"--filter-escape-chars", "--no-filter-escape-chars", "vm2", "true"}, "contradict each other", "", 2},
	} {
		got := lab.runInVM2(t, "", c.args...)
		if c.refused != "" && (got.code != 2 || got.stdout != "" || !strings.Contains(got.stderr, c.refused)) {
			t.Errorf("pedos-run %q: %+v, want a usage error saying %q", c.args, got, c.refused)
		}
		if c.refused == "" && (strings.Contains(got.stderr, "pedos-run:") || got.stdout != c.stdout || got.code != c.code) {
			t.Errorf("pedos-run %q: %+v, want the command run in vm2: %q, exit %d", c.args, got, c.stdout, c.code)
		}
	}
}

// The answer timeout bounds the agent's answer only (C7): a command that
// runs longer than it, without --timeout or within one, completes; and a
// --timeout shorter than it ends a call the agent does not answer at the
// --timeout, said as the --timeout's end, not as the answer's.
func TestCommandAnswerTimeoutBoundsTheAnswerOnly(t *testing.T) {
	sockDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(sockDir, "vm8"), 0o700); err != nil {
		t.Fatal(err)
	}
	answering, err := net.Listen("unix", filepath.Join(sockDir, "vm8", "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer answering.Close()
	agent := &qrexec.Agent{ServiceDir: t.TempDir(), RequestTimeout: 10 * time.Second, Log: slog.New(slog.DiscardHandler)}
	go agent.Serve(answering, nil)
	silentAgent(t, sockDir, "vm9")
	type outcome struct {
		code   int
		err    error
		stdout string
	}
	call := func(c qrexec.CommandCall) outcome {
		c.DomainsFile, c.SockDir, c.User = filepath.Join(sockDir, "no-domains.conf"), sockDir, "DEFAULT"
		done := make(chan outcome, 1)
		go func() {
			var stdout strings.Builder
			code, err := c.Run(qrexec.Streams{Stdout: &stdout})
			done <- outcome{code, err, stdout.String()}
		}()
		return qrexec.Await(t, "the call's end", done)
	}
	for _, timeout := range []time.Duration{0, time.Hour} {
		got := call(qrexec.CommandCall{Domain: "vm8", Command: "sleep 1.5; echo done", Timeout: timeout, AnswerTimeout: time.Second})
		if got.code != 0 || got.err != nil || got.stdout != "done\n" {
			t.Errorf("--timeout %v, a command longer than the answer timeout: exit %d, %v, stdout %q; want 0 and its output", timeout, got.code, got.err, got.stdout)
		}
	}
	got := call(qrexec.CommandCall{Domain: "vm9", Command: "true", Timeout: 200 * time.Millisecond, AnswerTimeout: 5 * time.Second})
	if got.code != qrexec.ExitFailure || got.err == nil || !strings.Contains(got.err.Error(), "no exit status within --timeout 200ms") {
		t.Errorf("--timeout 200ms, no answer: exit %d, %v; want %d, the --timeout said", got.code, got.err, qrexec.ExitFailure)
	}
}

// A socket directory may belong to root or to the user the command runs as,
// both dom0 (CheckSockDir; C1): run as another user than root, pedos-run
// takes either and goes on to the (absent) agent.
func TestClientSockDirOfRootOrItsOwnUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a command as another user needs root")
	}
	const nobody = 65534
	top := t.TempDir()
	for _, dir := range []string{filepath.Dir(top), top} { // t.TempDir's are private
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	built, err := os.ReadFile(testbin.Path(t, "pedos-run"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "pedos-run")
	if err := os.WriteFile(bin, built, 0o755); err != nil {
		t.Fatal(err)
	}
	rootOwned, own := filepath.Join(top, "root-sock"), filepath.Join(top, "own-sock")
	for _, dir := range []string{rootOwned, own} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(own, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{rootOwned, own} {
		cmd := exec.Command(bin, "--domains", filepath.Join(top, "none.conf"), "--sockdir", dir, "nosuchvm", "true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		_, stderr, code := testbin.Run(t, cmd)
		want := "pedos-run: qrexec: cannot reach the agent of nosuchvm: open " + filepath.Join(dir, "nosuchvm", "agent.sock") + ": no such file or directory"
		if code != qrexec.ExitFailure || !strings.HasPrefix(stderr, want) {
			t.Errorf("--sockdir %s as uid %d: exit %d, %q; want %q", dir, nobody, code, stderr, want)
		}
	}
}

// The daemon makes its socket directory where it is missing (a runtime
// directory gone after a reboot), one only dom0 may write whatever its umask
// (C1), then serves there: a domain's call reaches its daemon.sock.
func TestDaemonMakesAMissingSocketDir(t *testing.T) {
	dir := t.TempDir()
	sockDir := filepath.Join(dir, "run", "qrexec")
	domains, policyDir, serviceDir := filepath.Join(dir, "domains.conf"), filepath.Join(dir, "policy.d"), filepath.Join(dir, "dom0-rpc")
	writeFile(t, domains, "vm1\n", 0o644)
	mkdirPrivate(t, policyDir)
	mkdirPrivate(t, serviceDir)
	daemon := testbin.Path(t, "qrexec-daemon")
	umask := syscall.Umask(0) // inherited by the daemon; no test here runs in parallel
	startProcess(t, daemon, "--sockdir", sockDir, "--domains", domains,
		"--policy-dir", policyDir, "--service-dir", serviceDir, "--log", filepath.Join(dir, "daemon.log"))
	syscall.Umask(umask)
	waitForSocket(t, filepath.Join(sockDir, "vm1", "daemon.sock"))
	if st, err := os.Stat(sockDir); err != nil || st.Mode().Perm()&0o022 != 0 {
		t.Errorf("the socket directory made: %v, %v; want one only dom0 may write", st.Mode(), err)
	}
}
