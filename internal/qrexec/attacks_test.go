package qrexec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/testbin"
)

// The attacks of threats.md "Calls and sessions" against the real daemon on
// Unix sockets, where a domain is known by the socket it uses.

func (lab *testLab) callFrom(t testing.TB, domain, stdin string, args ...string) result {
	t.Helper()
	saved := lab.callerAddr
	defer func() { lab.callerAddr = saved }()
	lab.callerAddr = filepath.Join(lab.sockDir, domain, "daemon.sock")
	return lab.call(t, stdin, args...)
}

func TestC1ReceiveUpdatesOnlyFromTheUpdateVM(t *testing.T) {
	lab := newTestLab(t, transports[0])
	writeFile(t, filepath.Join(lab.serviceDirs["dom0"], "PedOS.ReceiveUpdates"), "#!/bin/sh\necho received from $QREXEC_REMOTE_DOMAIN\n", 0o755)
	lab.setPolicy(t, "PedOS.ReceiveUpdates * vm2 dom0 allow\nPedOS.ReceiveUpdates * @anyvm @anyvm deny\n")
	if got := lab.callFrom(t, "vm2", "", "dom0", "PedOS.ReceiveUpdates+0123"); got.code != 0 || got.stdout != "received from vm2\n" {
		t.Errorf("the UpdateVM's call: %+v", got)
	}
	// vm1 claims to be vm2 in its environment: the daemon knows it by its socket.
	if got := lab.callFrom(t, "vm1", "", "dom0", "PedOS.ReceiveUpdates+0123"); got.code != qrexec.ExitRefused || got.stdout != "" {
		t.Errorf("another domain's call: %+v", got)
	}
	// ... or in the request itself: a call naming a source is invalid.
	conn := dialRaw(t, lab, "vm1")
	err := qrexec.Start(conn, qrexec.MsgCall, qrexec.Request{Source: "vm2", Target: "dom0", Service: "PedOS.ReceiveUpdates"})
	if refused, ok := err.(*qrexec.RefusedError); !ok || refused.Code != qrexec.ExitRefused {
		t.Errorf("call claiming source vm2: %v", err)
	}
	if log := lab.log(t, "dom0"); !strings.Contains(log, `msg="call denied" domain=vm1`) {
		t.Errorf("denied call not logged:\n%s", log)
	}
}

func TestC4BadNamesRefusedBeforePolicy(t *testing.T) {
	lab := newTestLab(t, transports[0])
	for _, c := range [][2]string{
		{"dom0", "a;rm -rf /"},
		{"dom0", "$(id)"},
		{"dom0", "test.Echo+`id`"},
		{"dom0", "test.Echo+../../bin/sh"},
		{"dom0", ".."},
		{"dom0", strings.Repeat("s", 65)},
		{"dom0", "test.Echo+" + strings.Repeat("a", 65)},
		{"../vm2", "test.Echo"},
		{"@anyvm", "test.Echo"},
	} {
		if got := lab.call(t, "", c[0], c[1]); got.code != qrexec.ExitRefused || got.stdout != "" {
			t.Errorf("%q to %q: %+v", c[1], c[0], got)
		}
	}
	if n := strings.Count(lab.log(t, "dom0"), "invalid request refused"); n != 9 {
		t.Errorf("%d refusals logged, want 9", n)
	}
}

// C6: a domain's refused calls are logged one by one up to a burst, then
// only counted, so that it cannot fill dom0's log; other domains are still
// served.
func TestC6RefusalsLogBurst(t *testing.T) {
	lab := newTestLab(t, transports[0])
	for range 40 {
		if got := lab.call(t, "", "dom0", "$(id)"); got.code != qrexec.ExitRefused {
			t.Fatalf("an invalid call: %+v", got)
		}
	}
	if got := lab.callFrom(t, "vm2", "served", "dom0", "test.Echo"); got.code != 0 || got.stdout != "served" {
		t.Errorf("vm2's call: %+v", got)
	}
	// The burst of 20 per domain also covers the lab's own probes.
	if n := strings.Count(lab.log(t, "dom0"), "invalid request refused"); n > 20 || n < 10 {
		t.Errorf("%d refusals logged one by one for 40, want at most the burst of 20", n)
	}
}

func TestC5PolicySyntaxErrorFailsClosed(t *testing.T) {
	lab := newTestLab(t, transports[0])
	lab.setPolicy(t, testPolicy+"test.Echo * @anyvm dom0 alow\n")
	for _, target := range []string{"dom0", "vm2"} {
		if got := lab.call(t, "x", target, "test.Echo"); got.code != qrexec.ExitRefused || got.stdout != "" {
			t.Errorf("to %s with a broken policy: %+v", target, got)
		}
	}
	if log := lab.log(t, "dom0"); !strings.Contains(log, "50-test.policy:6") {
		t.Errorf("the policy error does not name the file and line:\n%s", log)
	}
	eval := command(t, "pedos-policy-eval", "--policy-dir", lab.policyDir, "--domains", lab.domainsFile, "vm1", "dom0", "test.Echo")
	if got := run(t, eval, ""); got.code != 2 || !strings.Contains(got.stderr, "50-test.policy:6") {
		t.Errorf("pedos-policy-eval on a broken policy: %+v", got)
	}
	// Fixed, it applies at the next call, without a restart.
	lab.setPolicy(t, testPolicy)
	if got := lab.call(t, "x", "dom0", "test.Echo"); got.code != 0 || got.stdout != "x" {
		t.Errorf("after the fix: %+v", got)
	}
	eval = command(t, "pedos-policy-eval", "--policy-dir", lab.policyDir, "--domains", lab.domainsFile, "vm1", "vm2", "test.Echo+a")
	if got := run(t, eval, ""); got.code != 0 || got.stdout != "allow target=vm2\n" {
		t.Errorf("pedos-policy-eval: %+v", got)
	}
}

// TestC6FloodAndHalfOpenRequests: one domain holding every call slot with
// requests it never finishes, or sending garbage, cannot stop another
// domain's calls; its stuck requests end at the request deadline.
func TestC6FloodAndHalfOpenRequests(t *testing.T) {
	dir := t.TempDir()
	// The held slots must still be held when qrexec-client-vm, a process
	// started below, connects: 5 s leaves room for a loaded machine (1 s
	// did not), and the test waits that long only once, for the cut.
	lab := newTestLabWithDaemon(t, dir, "--max-calls", "3", "--request-timeout", "5s")
	var halfOpen []qrexec.Conn
	for range 3 {
		halfOpen = append(halfOpen, holdCallSlot(t, lab, "vm1"))
	}
	// The fourth is refused at once, without its request being read.
	over := dialRaw(t, lab, "vm1")
	refusal := append(message(qrexec.MsgHello, []byte{1, 0, 0, 0}), message(qrexec.MsgRefuse, []byte{125, 0, 0, 0})...)
	if got, err := io.ReadAll(over); !bytes.Equal(got, refusal) || err != nil {
		t.Errorf("over the cap: read %x, %v", got, err)
	}
	// The client says so, rather than that its pipe broke.
	if got := lab.call(t, "", "dom0", "test.Echo"); got.code != qrexec.ExitFailure || !strings.Contains(got.stderr, "qrexec failure: the call did not start") {
		t.Errorf("qrexec-client-vm over the cap: %+v", got)
	}
	if got := lab.callFrom(t, "vm2", "still served", "dom0", "test.Echo"); got.code != 0 || got.stdout != "still served" {
		t.Errorf("vm2 while vm1 floods: %+v", got)
	}
	// The half-open requests are cut at the deadline (after the hello).
	for _, c := range halfOpen {
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("half-open request not closed by the daemon: %v", err)
		}
	}
	if got := lab.callFrom(t, "vm1", "again", "dom0", "test.Echo"); got.code != 0 || got.stdout != "again" {
		t.Errorf("vm1 after its stuck requests ended: %+v", got)
	}
	// Garbage and oversized messages end the connection, logged.
	for _, garbage := range [][]byte{
		append(message(qrexec.MsgHello, []byte{1, 0, 0, 0}), message(99, nil)...),
		append(message(qrexec.MsgHello, []byte{1, 0, 0, 0}), 2, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f),
		message(qrexec.MsgHello, []byte{7, 0, 0, 0}),
		message(qrexec.MsgStdin, make([]byte, 100)), // where the hello must be
	} {
		c := dialRaw(t, lab, "vm1")
		c.Write(garbage)
		// Closed with our bytes unread, the connection is reset.
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("garbage %x: connection not closed: %v", garbage, err)
		}
	}
	if got := lab.callFrom(t, "vm1", "after garbage", "dom0", "test.Echo"); got.code != 0 || got.stdout != "after garbage" {
		t.Errorf("vm1 after its garbage: %+v", got)
	}
	log := lab.log(t, "dom0")
	for _, want := range []string{"too many calls in progress", "request phase failed", "unknown message type 99", "protocol version 7", "message type 7 of 100 bytes"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// holdCallSlot opens a connection from domain that holds one of its call
// slots: a request that never comes.
func holdCallSlot(t *testing.T, lab *testLab, domain string) qrexec.Conn {
	t.Helper()
	for try := 0; ; try++ {
		c := dialRaw(t, lab, domain)
		// The daemon's hello, with no refusal after it, shows the request
		// holds a call slot. A refusal (125) follows the hello at once when
		// a slot was still taken by the probe that waited for the socket:
		// try again.
		_, err := io.ReadFull(c, make([]byte, 12))
		if err == nil {
			c.SetDeadline(time.Now().Add(100 * time.Millisecond))
			_, err = c.Read(make([]byte, 1))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.SetDeadline(qrexec.WaitDeadline(t))
				return c
			}
			err = fmt.Errorf("refused while a slot was taken: %v", err)
		}
		if try == 100 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newTestLabWithDaemon is a Unix-socket lab whose daemon gets extra flags.
func newTestLabWithDaemon(t testing.TB, _ string, flags ...string) *testLab {
	tr := transport{"unix", noSettings, func(t testing.TB, lab *testLab) { lab.startUnixDaemon(t, flags...) }}
	return newTestLab(t, tr)
}

// TestC7DeadlineOnDom0Calls: dom0's call to a domain that never answers ends
// at the caller's deadline, and the command in the domain is killed.
func TestC7DeadlineOnDom0Calls(t *testing.T) {
	lab := newTestLab(t, transports[0])
	got := lab.runInVM2(t, "", "--timeout", "300ms", "vm2", "sleep 600")
	if got.code != qrexec.ExitFailure || !strings.Contains(got.stderr, "vm2: no exit status within --timeout 300ms: the call was ended") || strings.Count(got.stderr, "\n") != 1 {
		t.Errorf("pedos-run --timeout, want one line: %+v", got)
	}
	// The agent notices the caller left and kills the command.
	waitForLog(t, lab, "vm2", `command="sleep 600" status=137`)
}

// TestC7DeadlineWhileStdoutIsNotRead: --timeout also ends a call whose
// output nobody reads (a copy stuck writing to a full pipe sees no
// connection deadline), with the same message, and the command is killed.
func TestC7DeadlineWhileStdoutIsNotRead(t *testing.T) {
	lab := newTestLab(t, transports[0])
	cmd := command(t, "pedos-run", "--domains", lab.domainsFile, "--sockdir", lab.sockDir, "--timeout", "300ms", "vm2", "yes")
	unread, stdout, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer unread.Close()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	err = cmd.Run()
	stdout.Close()
	cmd.failIfExpired(t)
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != qrexec.ExitFailure || !strings.Contains(stderr.String(), "vm2: no exit status within --timeout 300ms: the call was ended") {
		t.Errorf("pedos-run --timeout with its stdout unread: %v, stderr %q; want exit %d and the timeout named", err, stderr.String(), qrexec.ExitFailure)
	}
	waitForLog(t, lab, "vm2", `command=yes status=`)
}

// TestAgentTakesOnlyDom0Requests: the agent refuses a domain-style call.
func TestAgentTakesOnlyDom0Requests(t *testing.T) {
	lab := newTestLab(t, transports[0])
	conn := dial(t, filepath.Join(lab.sockDir, "vm2", "agent.sock"))
	err := qrexec.Start(conn, qrexec.MsgCall, qrexec.Request{Target: "vm2", Service: "test.Echo"})
	if err == nil {
		t.Error("the agent accepted a call message")
	}
}

// dialRaw connects to the daemon as domain, bounded.
func dialRaw(t *testing.T, lab *testLab, domain string) qrexec.Conn {
	t.Helper()
	return dial(t, filepath.Join(lab.sockDir, domain, "daemon.sock"))
}

// TestCallerLeavesRelayedCall: when a domain's caller goes away, the
// relayed service in the target is ended, not left running; also when the
// daemon and the agent run on stdio (ssh), where the daemon runs the agent
// as a child.
func TestCallerLeavesRelayedCall(t *testing.T) {
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			lab := newTestLab(t, tr)
			cmd := command(t, "qrexec-client-vm", "vm2", "test.Sleep")
			cmd.Env = append(cmd.Environ(), "PEDOS_QREXEC_SOCKET="+lab.callerAddr)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitForLog(t, lab, "dom0", `msg="call allowed" domain=vm1 service=test.Sleep`)
			// Over stdio the caller's daemon, the agent and the service are
			// its descendants, which its kill leaves to notice it left; if
			// they do not, they are stopped when the test ends.
			t.Cleanup(treeOf(cmd.Process.Pid).kill)
			cmd.Process.Kill()
			cmd.Wait()
			waitForLog(t, lab, "vm2", `service=test.Sleep argument="" status=137`)
		})
	}
}

// TestSignalEndsServices: a signal that stops the daemon, or an agent,
// kills the services they run too (each in a process group of its own),
// rather than leave them running with no call.
func TestSignalEndsServices(t *testing.T) {
	for _, c := range []struct{ name, target, domain string }{{"daemon", "dom0", "dom0"}, {"agent", "vm2", "vm2"}} {
		t.Run(c.name, func(t *testing.T) {
			lab := newTestLab(t, transports[0])
			pidFile := filepath.Join(t.TempDir(), "service.pid")
			writeFile(t, filepath.Join(lab.serviceDirs[c.domain], "test.Linger"), "#!/bin/sh\necho $$ >"+pidFile+"\nexec sleep 60\n", 0o755)
			cmd := command(t, "qrexec-client-vm", c.target, "test.Linger")
			cmd.Env = append(cmd.Environ(), "PEDOS_QREXEC_SOCKET="+lab.callerAddr)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pid int
			for range 200 {
				if b, err := os.ReadFile(pidFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
					pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if pid == 0 {
				t.Fatal("the service never started")
			}
			t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
			stopped := map[string]*exec.Cmd{"daemon": lab.daemon, "agent": lab.agent}[c.name]
			if err := stopped.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			for range 200 {
				if !alive(pid) {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Errorf("the %s's service (pid %d) outlived the %s's SIGTERM", c.name, pid, c.name)
		})
	}
}

// TestIgnoredSignalStaysIgnored: a daemon started ignoring SIGHUP (nohup)
// goes on serving after one, and SIGTERM still ends it.
func TestIgnoredSignalStaysIgnored(t *testing.T) {
	nohup := transport{"unix, SIGHUP ignored", noSettings, func(t testing.TB, lab *testLab) {
		agentSock := filepath.Join(lab.sockDir, "vm2", "agent.sock")
		mkdirPrivate(t, filepath.Dir(agentSock))
		lab.agent = startProcess(t, testbin.Path(t, "qrexec-agent"), lab.agentArgs("--listen", agentSock)...)
		lab.daemon = startProcess(t, "/bin/sh", append([]string{"-c", `trap "" HUP; exec "$0" "$@"`, testbin.Path(t, "qrexec-daemon")}, lab.daemonArgs()...)...)
		lab.callerAddr = filepath.Join(lab.sockDir, "vm1", "daemon.sock")
		waitForSocket(t, agentSock)
		waitForSocket(t, lab.callerAddr)
	}}
	lab := newTestLab(t, nohup)
	if err := lab.daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // time for a wrongly handled SIGHUP to act
	cmd := command(t, "qrexec-client-vm", "dom0", "test.Echo")
	cmd.Env = append(cmd.Environ(), "PEDOS_QREXEC_SOCKET="+lab.callerAddr)
	cmd.Stdin = strings.NewReader("still served\n")
	if out, err := cmd.Output(); err != nil || string(out) != "still served\n" {
		t.Fatalf("a call after SIGHUP: %q, %v", out, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- lab.daemon.Wait() }()
	if err := lab.daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	qrexec.Await(t, "the daemon's exit on SIGTERM", exited)
}

// alive tells whether pid is a process that has not exited (a zombie has).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func waitForLog(t testing.TB, lab *testLab, domain, want string) {
	t.Helper()
	for range 200 {
		if strings.Contains(lab.log(t, domain), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s's log never showed %q:\n%s", domain, want, lab.log(t, domain))
}

// labWithFakeAgent is a lab whose vm2 agent is the returned listener, for a
// test to play a misbehaving target; it is closed when the test ends.
func labWithFakeAgent(t *testing.T) (*testLab, net.Listener) {
	fakeAgent := filepath.Join(t.TempDir(), "agent.sock")
	settings := func(testing.TB, *testLab) map[string]string { return map[string]string{"vm2": "agent=" + fakeAgent} }
	lab := newTestLab(t, transport{"unix", settings, startUnix})
	l, err := net.Listen("unix", fakeAgent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return lab, l
}

// TestC6MisbehavingTarget: a target's agent that answers a relayed call
// with a message where the answer belongs is dropped; the caller gets a
// qrexec failure and the daemon serves on.
func TestC6MisbehavingTarget(t *testing.T) {
	lab, l := labWithFakeAgent(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write(append(message(qrexec.MsgHello, []byte{1, 0, 0, 0}), message(qrexec.MsgStdout, make([]byte, 100))...))
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	if got := lab.call(t, "", "vm2", "test.Echo"); got.code != qrexec.ExitFailure {
		t.Errorf("call to the misbehaving target: %+v", got)
	}
	if got := lab.call(t, "still served", "dom0", "test.Echo"); got.code != 0 || got.stdout != "still served" {
		t.Errorf("call to dom0 afterwards: %+v", got)
	}
	waitForLog(t, lab, "dom0", "message type 8 of 100 bytes")
}

// A service's stderr goes to its domain's log, never to the caller
// (spec/qrexec.md): what a target's agent sends the caller as stderr, an
// escape sequence here, does not reach the caller's terminal.
func TestTargetStderrNeverReachesTheCaller(t *testing.T) {
	lab, l := labWithFakeAgent(t)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var reply []byte
		for _, m := range [][2]any{{qrexec.MsgHello, []byte{1, 0, 0, 0}}, {qrexec.MsgAccept, []byte{}},
			{qrexec.MsgStderr, []byte("\x1b[2Jfrom the target\n")}, {qrexec.MsgStdout, []byte("out")},
			{qrexec.MsgStdout, []byte{}}, {qrexec.MsgStderr, []byte{}}, {qrexec.MsgExit, []byte{0, 0, 0, 0}}} {
			reply = append(reply, message(m[0].(qrexec.MsgType), m[1].([]byte))...)
		}
		c.Write(reply)
		io.Copy(io.Discard, c)
	}()
	if got := lab.call(t, "", "vm2", "test.Echo"); got.code != 0 || got.stdout != "out" || strings.Contains(got.stderr, "from the target") {
		t.Errorf("call to a target that sends stderr: %+v, want its stdout and none of its stderr", got)
	}
}

// TestC1AgentSocketSymlinkNotFollowed: a domain writes in its own socket
// directory; a symbolic link it puts where its agent's socket belongs must
// not send dom0's commands for it to another domain's agent.
func TestC1AgentSocketSymlinkNotFollowed(t *testing.T) {
	lab := newTestLab(t, transports[0])
	if err := os.Symlink("../vm2/agent.sock", filepath.Join(lab.sockDir, "vm1", "agent.sock")); err != nil {
		t.Fatal(err)
	}
	got := lab.runInVM2(t, "", "vm1", "echo ran in; hostname")
	if got.code != qrexec.ExitFailure || got.stdout != "" || !strings.Contains(got.stderr, "not a socket but a symbolic link") {
		t.Errorf("pedos-run vm1 through vm1's symlink to vm2's agent: %+v", got)
	}
	if log := lab.log(t, "vm2"); strings.Contains(log, "running command") {
		t.Errorf("vm2's agent ran dom0's command for vm1:\n%s", log)
	}
}

// TestC6DomainSocketEntriesNotFollowed: what a domain leaves where its
// daemon.sock belongs is replaced, never followed (a link's target keeps its
// mode); a domain whose socket cannot be set up is not served, and the
// daemon serves the others.
func TestC6DomainSocketEntriesNotFollowed(t *testing.T) {
	victim := filepath.Join(t.TempDir(), "dom0-secret")
	writeFile(t, victim, "secret\n", 0o600)
	prepare := func(t testing.TB, lab *testLab) {
		mkdirPrivate(t, filepath.Join(lab.sockDir, "vm1"))
		if err := os.Symlink(victim, filepath.Join(lab.sockDir, "vm1", "daemon.sock")); err != nil {
			t.Fatal(err)
		}
		mkdirPrivate(t, filepath.Join(lab.sockDir, "vm2"))
		mkdir(t, filepath.Join(lab.sockDir, "vm2", "daemon.sock", "not-empty"))
		lab.startUnixDaemon(t)
	}
	lab := newTestLab(t, transport{"unix", noSettings, prepare})
	if got := lab.call(t, "served", "dom0", "test.Echo"); got.code != 0 || got.stdout != "served" {
		t.Errorf("vm1's call: %+v", got)
	}
	if fi, err := os.Stat(victim); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the link's target: %v, %v", fi.Mode(), err)
	}
	waitForLog(t, lab, "dom0", `msg="cannot listen for the domain's calls, which are not served" domain=vm2`)
}

// TestC1OpenSocketDirectoryRefused: whoever reaches a domain's daemon.sock
// calls as that domain, so a socket directory made beforehand that group
// or others may enter, that another user owns, or that is a link is refused,
// with how to fix it, and so is a socket directory's parent others may
// write; the daemon serves the other domains.
func TestC1OpenSocketDirectoryRefused(t *testing.T) {
	type setup struct {
		name  string
		make  func(t testing.TB, vm3 string)
		wants func(vm3 string) string // the log line
	}
	cases := []setup{{"a link", func(t testing.TB, vm3 string) {
		elsewhere := t.TempDir()
		mkdirPrivate(t, filepath.Dir(vm3))
		if err := os.Symlink(elsewhere, vm3); err != nil {
			t.Fatal(err)
		}
	}, func(vm3 string) string { return vm3 + " is a symbolic link" }}, {"a link to nothing", func(t testing.TB, vm3 string) {
		mkdirPrivate(t, filepath.Dir(vm3))
		if err := os.Symlink(filepath.Join(t.TempDir(), "gone"), vm3); err != nil {
			t.Fatal(err)
		}
	}, func(vm3 string) string { return vm3 + " is a symbolic link" }}}
	for _, mode := range []os.FileMode{0o755, 0o750, 0o701} {
		cases = append(cases, setup{fmt.Sprintf("mode %#o", mode), func(t testing.TB, vm3 string) {
			mkdirPrivate(t, vm3)
			if err := os.Chmod(vm3, mode); err != nil {
				t.Fatal(err)
			}
		}, func(vm3 string) string {
			return fmt.Sprintf("%s has mode %#o, so others than dom0 and the domain may call as the domain: chmod 0700 %s", vm3, mode, vm3)
		}})
	}
	if os.Geteuid() == 0 {
		cases = append(cases, setup{"owned by another user", func(t testing.TB, vm3 string) {
			mkdirPrivate(t, vm3)
			if err := os.Chown(vm3, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, func(vm3 string) string { return vm3 + " belongs to uid 65534" }})
	}
	for _, c := range cases {
		prepare := func(t testing.TB, lab *testLab) {
			f, err := os.OpenFile(lab.domainsFile, os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				_, err = f.WriteString("vm3\n")
				f.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			c.make(t, filepath.Join(lab.sockDir, "vm3"))
			lab.startUnixDaemon(t)
		}
		lab := newTestLab(t, transport{"unix", noSettings, prepare})
		if got := lab.call(t, "served", "dom0", "test.Echo"); got.code != 0 || got.stdout != "served" {
			t.Errorf("%s: vm1's call: %+v", c.name, got)
		}
		vm3 := filepath.Join(lab.sockDir, "vm3")
		waitForLog(t, lab, "dom0", c.wants(vm3))
		if _, err := os.Lstat(filepath.Join(vm3, "daemon.sock")); err == nil {
			t.Errorf("%s: vm3's socket made where others reach it", c.name)
		}
	}
}

// TestC6DroppedConnectionsLogOnce: a domain connecting again and again over
// its call limit gets one log line, not one per connection.
func TestC6DroppedConnectionsLogOnce(t *testing.T) {
	lab := newTestLabWithDaemon(t, "", "--max-calls", "1")
	holdCallSlot(t, lab, "vm1")
	for range 300 {
		c := dialRaw(t, lab, "vm1")
		// Dropped: the hello, the refusal, then EOF. A daemon that kept the
		// connection open fails the test here rather than at go test's timeout.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, c)
		c.Close()
		if err != nil {
			t.Fatalf("a connection over the call cap was not dropped: %v", err)
		}
	}
	if got := lab.callFrom(t, "vm2", "served", "dom0", "test.Echo"); got.code != 0 || got.stdout != "served" {
		t.Errorf("vm2's call: %+v", got)
	}
	log := lab.log(t, "dom0")
	if n := strings.Count(log, "too many calls in progress"); n != 1 || !strings.Contains(log, "count=1") {
		t.Errorf("%d lines for 300 dropped connections:\n%.2000s", n, log)
	}
}

// TestC6InvalidFieldsLoggedShort: a request field may be 64 KiB, and the
// refusal burst limits lines, not bytes; an invalid field is logged as a
// short prefix and its length, quoted once.
func TestC6InvalidFieldsLoggedShort(t *testing.T) {
	lab := newTestLab(t, transports[0])
	before := len(lab.log(t, "dom0"))
	huge := strings.Repeat("\x00", 65000)
	for _, req := range []qrexec.Request{
		{Target: "dom0", Service: huge},
		{Target: "dom0", Service: "test.Echo", Argument: huge},
		{Target: huge, Service: "test.Echo"},
	} {
		err := qrexec.Start(dialRaw(t, lab, "vm1"), qrexec.MsgCall, req)
		if refused, ok := err.(*qrexec.RefusedError); !ok || refused.Code != qrexec.ExitRefused {
			t.Errorf("a call with a 65000-byte field: %v", err)
		}
	}
	log := lab.log(t, "dom0")[before:]
	if n := strings.Count(log, "invalid request refused"); n != 3 {
		t.Fatalf("%d refusals logged, want 3:\n%.3000s", n, log)
	}
	// 64 NUL bytes, each \x00 once quoted: 256 bytes of the value per line.
	prefix := strings.Repeat(`\x00`, 64) + "…(65000 bytes)"
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if strings.Contains(line, "invalid request refused") && (len(line) > 600 || !strings.Contains(line, prefix)) {
			t.Errorf("a line of %d bytes, want the value's first 64 bytes quoted once and its length:\n%.1000s", len(line), line)
		}
	}
}

// TestC6AllowedCallsLogBurst: a domain the policy allows to call a dom0
// service, calling it in a loop, cannot fill dom0's log either: one call's
// service stderr is logged up to 100 lines, and a domain's allowed calls
// up to a burst of 200 lines, then counted. The first call is logged as
// it always was, and another domain's calls are still logged.
func TestC6AllowedCallsLogBurst(t *testing.T) {
	lab := newTestLab(t, transports[0])
	writeFile(t, filepath.Join(lab.serviceDirs["dom0"], "test.Noisy"), "#!/bin/sh\nseq 150 >&2\necho done\n", 0o755)
	before := len(lab.log(t, "dom0"))
	for i := range 5 {
		conn := dialRaw(t, lab, "vm1")
		var stdout bytes.Buffer
		if code, err := call(conn, qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: "test.Noisy"}, qrexec.Streams{Stdout: &stdout}); code != 0 || stdout.String() != "done\n" {
			t.Fatalf("a noisy call: %d, %q, %v", code, stdout.String(), err)
		}
		conn.Close()
		if i == 0 {
			// The daemon logs "call finished" after the caller has its exit
			// status: the next call must not take the rest of the burst first.
			waitForLog(t, lab, "dom0", `msg="call finished" domain=vm1 service=test.Noisy`)
		}
	}
	if got := lab.callFrom(t, "vm2", "served", "dom0", "test.Echo"); got.code != 0 || got.stdout != "served" {
		t.Errorf("vm2's call: %+v", got)
	}
	log := lab.log(t, "dom0")[before:]
	var vm1Lines []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "domain=vm1 service=test.Noisy") {
			vm1Lines = append(vm1Lines, line)
		}
	}
	if len(vm1Lines) > 200 || len(vm1Lines) < 103 {
		t.Fatalf("%d lines for 5 calls of 150 stderr lines each, want the first call's 103 and at most the burst of 200:\n%.3000s", len(vm1Lines), log)
	}
	first := vm1Lines[:102]
	if !strings.Contains(first[0], `msg="call allowed" domain=vm1 service=test.Noisy argument="" target=dom0 to=dom0 rule=`) ||
		!strings.Contains(first[1], `msg="service stderr" domain=vm1 service=test.Noisy argument="" target=dom0 line=1`) ||
		!strings.Contains(first[100], `msg="service stderr" domain=vm1 service=test.Noisy argument="" target=dom0 line=100`) ||
		!strings.Contains(first[101], `msg="more service stderr, not logged" domain=vm1 service=test.Noisy argument="" target=dom0 lines_logged=100`) ||
		!strings.Contains(log, `msg="call finished" domain=vm1 service=test.Noisy argument="" target=dom0 status=0`) {
		t.Errorf("the first call's lines:\n%s", strings.Join(first, "\n"))
	}
	if !strings.Contains(log, `msg="call allowed" domain=vm2 service=test.Echo`) {
		t.Errorf("vm2's call not logged while vm1's were counted:\n%.3000s", log)
	}
}

// TestCallerHalfClosesAfterStdin: a caller that half-closes its connection
// after its stdin's EOF (shutdown(SHUT_WR), as socat and nc -N do; over
// stdio, closing the daemon's stdin) still gets the output and the exit
// status, from dom0 or through the relay.
func TestCallerHalfClosesAfterStdin(t *testing.T) {
	for _, tr := range transports[:2] {
		t.Run(tr.name, func(t *testing.T) {
			lab := newTestLab(t, tr)
			for _, d := range lab.serviceDirs {
				writeFile(t, filepath.Join(d, "test.Slow"), "#!/bin/sh\ncat >/dev/null\nsleep 0.5\necho done\nexit 7\n", 0o755)
			}
			for _, target := range []string{"dom0", "vm2"} {
				conn := dial(t, lab.callerAddr)
				if err := qrexec.Start(conn, qrexec.MsgCall, qrexec.Request{Target: target, Service: "test.Slow"}); err != nil {
					t.Fatalf("to %s: %v", target, err)
				}
				conn.Write(append(message(qrexec.MsgStdin, []byte("abc")), message(qrexec.MsgStdin, nil)...))
				conn.(interface{ CloseWrite() error }).CloseWrite()
				got, err := io.ReadAll(conn)
				want := append(append(message(qrexec.MsgStdout, []byte("done\n")), message(qrexec.MsgStdout, nil)...), message(qrexec.MsgExit, []byte{7, 0, 0, 0})...)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("to %s, after a half-close: read %q, %v; want %q", target, got, err, want)
				}
			}
		})
	}
}

// TestC6CallerLeavesWhileNothingReadsIt: a caller that leaves while its
// stdin is stuck (a dom0 service that does not read it, a target that
// reads nothing relayed to it) ends its call: the service is killed, the
// call slot freed.
func TestC6CallerLeavesWhileNothingReadsIt(t *testing.T) {
	for _, tr := range transports[:2] {
		t.Run("dom0 service on "+tr.name, func(t *testing.T) {
			lab := newTestLab(t, tr)
			conn := dial(t, lab.callerAddr)
			if err := qrexec.Start(conn, qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: "test.Sleep"}); err != nil {
				t.Fatal(err)
			}
			writeUntilBlocked(t, conn)
			conn.Close()
			waitForLog(t, lab, "dom0", `service=test.Sleep argument="" target=dom0 status=137`)
		})
	}
	t.Run("target", func(t *testing.T) {
		fakeAgent := filepath.Join(t.TempDir(), "agent.sock")
		settings := func(testing.TB, *testLab) map[string]string { return map[string]string{"vm2": "agent=" + fakeAgent} }
		lab := newTestLab(t, transport{"unix", settings, func(t testing.TB, lab *testLab) { lab.startUnixDaemon(t, "--max-calls", "1") }})
		acceptAndHold(t, fakeAgent)
		conn := dialAccepted(t, lab, qrexec.Request{Target: "vm2", Service: "test.Echo"})
		writeUntilBlocked(t, conn)
		conn.Close()
		for try := 0; ; try++ {
			got := lab.call(t, "again", "dom0", "test.Echo")
			if got.code == 0 && got.stdout == "again" {
				break
			}
			if try == 100 {
				t.Fatalf("vm1's only call slot still held after its caller left: %+v", got)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// A hostile agent that ends its stderr first cannot silence dom0's client:
// the client's own message about what the agent did next still reaches
// its stderr (the remote's stderr EOF does not close ours).
func TestClientMessagesSurviveRemoteStderrEOF(t *testing.T) {
	dir := t.TempDir()
	fakeAgent := filepath.Join(dir, "agent.sock")
	reply := slices.Concat(message(qrexec.MsgHello, []byte{1, 0, 0, 0}), message(qrexec.MsgAccept, nil),
		message(qrexec.MsgStderr, nil), message(qrexec.MsgExit, []byte{0x2c, 1, 0, 0})) // status 300
	serveFakeAgent(t, fakeAgent, reply)
	domains := filepath.Join(dir, "domains.conf")
	writeFile(t, domains, "vm2 agent="+fakeAgent+"\n", 0o644)
	for name, args := range map[string][]string{
		"qrexec-client": {"--domains", domains, "-d", "vm2", "root:true"},
		"pedos-run":     {"--domains", domains, "vm2", "true"},
	} {
		got := run(t, command(t, name, args...), "")
		if got.code != qrexec.ExitFailure || !strings.Contains(got.stderr, "exit status 300") {
			t.Errorf("%s against an agent that ends stderr, then sends exit status 300: %+v", name, got)
		}
	}
}

// serveFakeAgent serves a fake agent on path that answers every call's
// hello and request with reply, then holds the connection until the test
// ends.
func serveFakeAgent(t *testing.T, path string, reply []byte) {
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			header := make([]byte, 12+8) // hello, request header
			if _, err := io.ReadFull(c, header); err != nil {
				continue
			}
			io.ReadFull(c, make([]byte, binary.LittleEndian.Uint32(header[16:])))
			c.Write(reply)
		}
	}()
}

// acceptAndHold serves a fake agent on path that accepts every call, then
// neither reads nor writes nor closes until the test ends.
func acceptAndHold(t *testing.T, path string) {
	serveFakeAgent(t, path, append(message(qrexec.MsgHello, []byte{1, 0, 0, 0}), message(qrexec.MsgAccept, nil)...))
}

// dialAccepted starts a call from vm1, trying again while the daemon
// refuses it for a call slot still taken (by the lab's probe).
func dialAccepted(t *testing.T, lab *testLab, req qrexec.Request) qrexec.Conn {
	for try := 0; ; try++ {
		conn := dialRaw(t, lab, "vm1")
		err := qrexec.Start(conn, qrexec.MsgCall, req)
		if err == nil {
			return conn
		}
		conn.Close()
		if try == 100 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeUntilBlocked sends stdin messages on conn until a write waits for a
// second: nothing reads them any more, and the buffers on the way are full.
func writeUntilBlocked(t *testing.T, conn qrexec.Conn) {
	t.Helper()
	chunk := message(qrexec.MsgStdin, make([]byte, qrexec.MaxDataLen))
	for sent := 0; sent < 256<<20; sent += len(chunk) {
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write(chunk); errors.Is(err, os.ErrDeadlineExceeded) {
			conn.SetDeadline(qrexec.WaitDeadline(t))
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("256 MiB of stdin taken by a service that reads none")
}

// TestStdioAgentStderrStaysInDom0: under --stdio the daemon's stderr is the
// calling domain's channel; the stderr of the command it runs to reach a
// target's agent (here the agent itself, logging to its stderr) goes to
// dom0's log, never to the caller.
func TestStdioAgentStderrStaysInDom0(t *testing.T) {
	settings := func(t testing.TB, lab *testLab) map[string]string {
		agent := strings.Join([]string{testbin.Path(t, "qrexec-agent"), "--stdio", "--service-dir", lab.serviceDirs["vm2"]}, " ")
		return map[string]string{"vm2": "agent=exec:" + agent}
	}
	lab := newTestLab(t, transport{"stdio", settings, startStdio})
	got := lab.call(t, "", "vm2", "test.Stderr")
	if got.code != 0 || got.stdout != "visible\n" || got.stderr != "" {
		t.Errorf("vm1's call to vm2, want vm2's agent log nowhere in its stderr: %+v", got)
	}
	waitForLog(t, lab, "dom0", `msg="agent stderr" domain=vm1 service=test.Stderr argument="" target=vm2 line=`)
	if log := lab.log(t, "dom0"); !strings.Contains(log, "SECRET-ON-STDERR") {
		t.Errorf("the agent's log line is not in dom0's log:\n%s", log)
	}
}
