package qrexec_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/vsock"

	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/testbin"
)

// testLab is dom0 and two domains, vm1 and vm2, on this machine: the real
// qrexec-daemon and qrexec-agent binaries linked by one transport, real
// service scripts, a real policy. Calls come from vm1.
type testLab struct {
	dir, sockDir, policyDir, domainsFile string
	serviceDirs                          map[string]string // domain → its service directory
	logs                                 map[string]string // domain → the log its services' stderr goes to
	callerAddr                           string            // how vm1's qrexec-client-vm reaches the daemon
	daemon, agent                        *exec.Cmd         // the daemon and vm2's agent, where they run apart
}

// A transport links the lab's daemon, vm2's agent and vm1's caller its way:
// domains gives the domains file's settings per domain, start starts the
// processes and sets lab.callerAddr.
type transport struct {
	name    string
	domains func(t testing.TB, lab *testLab) map[string]string
	start   func(t testing.TB, lab *testLab)
}

var transports = []transport{
	{"unix", noSettings, startUnix},
	{"stdio", stdioSettings, startStdio},
	{"vsock", vsockSettings, startVsock},
}

// testServices are installed in dom0 and vm2 alike.
var testServices = map[string]string{
	"test.Echo":         "#!/bin/sh\nexec cat\n",
	"test.Env":          "#!/bin/sh\nenv | grep ^QREXEC | sort\necho \"argv1=$1\"\n",
	"test.Exit":         "#!/bin/sh\ncat >/dev/null\nexit \"$1\"\n",
	"test.Stderr":       "#!/bin/sh\necho SECRET-ON-STDERR >&2\necho visible\n",
	"test.Count":        "#!/bin/sh\nwc -c\n",
	"test.Arg":          "#!/bin/sh\necho generic \"$1\"\n",
	"test.Arg+specific": "#!/bin/sh\necho specific \"$1\"\n",
	"test.Sleep":        "#!/bin/sh\nexec sleep 60\n",
	"test.Empty":        "#!/bin/sh\n",
}

const testPolicy = `# conformance policy
test.Denied  *  @anyvm  @anyvm  deny
test.Denied  *  @anyvm  dom0    deny
*            *  @anyvm  dom0    allow
*            *  @anyvm  @anyvm  allow
`

func newTestLab(t testing.TB, tr transport) *testLab {
	t.Helper()
	dir := t.TempDir()
	lab := &testLab{
		dir:         dir,
		sockDir:     filepath.Join(dir, "sock"),
		policyDir:   filepath.Join(dir, "policy.d"),
		domainsFile: filepath.Join(dir, "domains.conf"),
		serviceDirs: map[string]string{"dom0": filepath.Join(dir, "dom0-rpc"), "vm2": filepath.Join(dir, "vm2-rpc")},
		logs:        map[string]string{"dom0": filepath.Join(dir, "daemon.log"), "vm2": filepath.Join(dir, "agent.log")},
	}
	for _, d := range lab.serviceDirs {
		mkdir(t, d)
		for name, text := range testServices {
			writeFile(t, filepath.Join(d, name), text, 0o755)
		}
		// A non-executable service file names the program to run.
		writeFile(t, filepath.Join(d, "test.Named"), "# program and leading arguments\n/bin/echo named\n", 0o644)
	}
	mkdir(t, lab.policyDir)
	lab.setPolicy(t, testPolicy)
	settings := tr.domains(t, lab)
	writeFile(t, lab.domainsFile, fmt.Sprintf("vm1 %s\nvm2 %s\n", settings["vm1"], settings["vm2"]), 0o644)
	tr.start(t, lab)
	return lab
}

func (lab *testLab) setPolicy(t testing.TB, text string) {
	writeFile(t, filepath.Join(lab.policyDir, "50-test.policy"), text, 0o644)
}

// The daemon and agents run with QREXEC_* variables set, which their
// services must never see (C3).
var hostileEnv = []string{"QREXEC_REMOTE_DOMAIN=forged", "QREXEC_SERVICE_ARGUMENT=forged", "QREXEC_FOO=forged"}

func (lab *testLab) daemonArgs(extra ...string) []string {
	return append([]string{
		"--sockdir", lab.sockDir, "--domains", lab.domainsFile, "--policy-dir", lab.policyDir,
		"--service-dir", lab.serviceDirs["dom0"], "--log", lab.logs["dom0"],
	}, extra...)
}

func (lab *testLab) agentArgs(extra ...string) []string {
	return append([]string{"--service-dir", lab.serviceDirs["vm2"], "--log", lab.logs["vm2"]}, extra...)
}

func noSettings(testing.TB, *testLab) map[string]string { return nil }

func startUnix(t testing.TB, lab *testLab) { lab.startUnixDaemon(t) }

// startUnixDaemon starts vm2's agent and the daemon (with extra flags) on
// Unix sockets.
func (lab *testLab) startUnixDaemon(t testing.TB, daemonFlags ...string) {
	t.Helper()
	agentSock := filepath.Join(lab.sockDir, "vm2", "agent.sock")
	mkdirPrivate(t, filepath.Dir(agentSock))
	lab.agent = startProcess(t, testbin.Path(t, "qrexec-agent"), lab.agentArgs("--listen", agentSock)...)
	lab.daemon = startProcess(t, testbin.Path(t, "qrexec-daemon"), lab.daemonArgs(daemonFlags...)...)
	lab.callerAddr = filepath.Join(lab.sockDir, "vm1", "daemon.sock")
	waitForSocket(t, agentSock)
	waitForSocket(t, lab.callerAddr)
}

// stdio: every call runs `qrexec-daemon --stdio vm1` as the caller's link
// (as an ssh forced command would), and the daemon reaches vm2 by running
// `qrexec-agent --stdio`.
func stdioSettings(t testing.TB, lab *testLab) map[string]string {
	agent := strings.Join(append([]string{testbin.Path(t, "qrexec-agent"), "--stdio"}, lab.agentArgs()...), " ")
	return map[string]string{"vm2": "agent=exec:" + agent}
}

func startStdio(t testing.TB, lab *testLab) {
	t.Setenv("QREXEC_REMOTE_DOMAIN", "forged") // inherited by the stdio daemon and agent
	daemon := append([]string{testbin.Path(t, "qrexec-daemon"), "--stdio", "vm1"}, lab.daemonArgs()...)
	lab.callerAddr = "exec:" + strings.Join(daemon, " ")
}

// vsock, over the local loopback CID 1 only: vm1 is cid=1, the daemon and
// vm2's agent listen on ports of CID 1. Never any other CID: those are other
// machines.
var vsockPorts = struct{ daemon, agent uint32 }{}

func vsockSettings(t testing.TB, lab *testLab) map[string]string {
	requireVsockLoopback(t)
	vsockPorts.daemon = 20000 + rand.Uint32N(20000)
	vsockPorts.agent = vsockPorts.daemon + 1
	return map[string]string{"vm1": "cid=1", "vm2": fmt.Sprintf("agent=vsock:1:%d", vsockPorts.agent)}
}

func startVsock(t testing.TB, lab *testLab) {
	startProcess(t, testbin.Path(t, "qrexec-agent"), lab.agentArgs("--listen", fmt.Sprintf("vsock:%d", vsockPorts.agent), "--dom0-cid", "1")...)
	startProcess(t, testbin.Path(t, "qrexec-daemon"), lab.daemonArgs("--no-unix", "--vsock-port", fmt.Sprint(vsockPorts.daemon))...)
	lab.callerAddr = fmt.Sprintf("vsock:1:%d", vsockPorts.daemon)
	waitForVsock(t, vsockPorts.agent)
	waitForVsock(t, vsockPorts.daemon)
}

// waitForVsock waits until something accepts connections on port of this
// machine (CID 1). The probe sends nothing and hangs up, which the daemon
// and the agent take as a caller that gave up before its request.
func waitForVsock(t testing.TB, port uint32) {
	t.Helper()
	waitForListener(t, fmt.Sprintf("vsock port %d", port), func() (net.Conn, error) { return vsock.Dial(1, port, nil) })
}

// loadVsockLoopback loads, once, the kernel module that gives vsock its
// loopback (CID 1) where the kernel has it as a module (Debian's does, and
// does not load it by itself); as root only, and a failure is left to the
// probe below to report.
var loadVsockLoopback = sync.OnceValue(func() string {
	if os.Geteuid() != 0 {
		return "not root, so modprobe vsock_loopback was not tried"
	}
	out, err := exec.Command("modprobe", "vsock_loopback").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("modprobe vsock_loopback: %v %s", err, bytes.TrimSpace(out))
	}
	return "vsock_loopback is loaded"
})

// requireVsockLoopback skips the test unless a vsock connection to this
// machine (CID 1) works.
func requireVsockLoopback(t testing.TB) {
	loaded := loadVsockLoopback()
	l, err := vsock.ListenContextID(1, 0, nil)
	if err != nil {
		t.Skipf("vsock loopback unavailable (a kernel without CONFIG_VSOCKETS_LOOPBACK; %s): %v", loaded, err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := vsock.Dial(1, l.Addr().(*vsock.Addr).Port, nil)
	if err != nil {
		t.Skipf("vsock loopback unavailable (a kernel without CONFIG_VSOCKETS_LOOPBACK; %s): %v", loaded, err)
	}
	c.Close()
}

// startProcess starts a long-running binary with hostileEnv and stops it
// (by pid) when the test ends, with what it started and left running.
func startProcess(t testing.TB, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), hostileEnv...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	forget := testbin.StopOnAbort(func() { treeOf(cmd.Process.Pid).kill() })
	t.Cleanup(func() {
		defer forget()
		tree := treeOf(cmd.Process.Pid)
		defer tree.kill()
		cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		qrexec.Await(t, filepath.Base(path)+"'s exit on SIGTERM", exited)
	})
	return cmd
}

func waitForSocket(t testing.TB, path string) {
	t.Helper()
	waitForListener(t, path, func() (net.Conn, error) { return net.Dial("unix", path) })
}

// waitForListener dials until a connection succeeds, then hangs up.
func waitForListener(t testing.TB, what string, dial func() (net.Conn, error)) {
	t.Helper()
	for range 1000 { // 10 s: a loaded machine may start a process slowly
		if c, err := dial(); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: nobody listening after 10 s", what)
}

// result is what a client command did.
type result struct {
	stdout, stderr string
	code           int
}

// call runs qrexec-client-vm in vm1 with stdin, and a forged
// QREXEC_REMOTE_DOMAIN in its environment (C3).
func (lab *testLab) call(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	cmd := command(t, "qrexec-client-vm", args...)
	cmd.Env = append(os.Environ(), "PEDOS_QREXEC_SOCKET="+lab.callerAddr, "QREXEC_REMOTE_DOMAIN=dom0")
	return run(t, cmd, stdin)
}

// runInVM2 runs pedos-run from dom0 in vm2.
func (lab *testLab) runInVM2(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	args = append([]string{"--domains", lab.domainsFile, "--sockdir", lab.sockDir}, args...)
	return run(t, command(t, "pedos-run", args...), stdin)
}

// run runs cmd with stdin and returns what it did.
func run(t testing.TB, cmd *boundedCmd, stdin string) result {
	t.Helper()
	cmd.Stdin = strings.NewReader(stdin)
	stdout, stderr, code := testbin.Run(t, cmd.Cmd)
	cmd.failIfExpired(t)
	return result{stdout, stderr, code}
}

// log is the log of domain's daemon or agent so far: nothing before it
// starts (a stdio daemon starts with its call).
func (lab *testLab) log(t testing.TB, domain string) string {
	data, err := os.ReadFile(lab.logs[domain])
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}

func mkdir(t testing.TB, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// mkdirPrivate makes dir 0700, as a domain's socket directory must be.
func mkdirPrivate(t testing.TB, dir string) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path, text string, mode os.FileMode) {
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}
