package qrexec_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/qrexec"
)

// TestConformance runs one suite against every transport (the rclone
// pattern, style.md): whatever carries a call, a service sees and does the
// same.
func TestConformance(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			lab := newTestLab(t, tr)
			// dom0: the daemon runs the service; vm2: relayed to its agent.
			for _, target := range []string{"dom0", "vm2"} {
				t.Run("to-"+target, func(t *testing.T) { conformanceCalls(t, lab, target) })
			}
			t.Run("dom0-runs-in-vm2", func(t *testing.T) { conformanceCommands(t, lab) })
		})
	}
}

func conformanceCalls(t *testing.T, lab *testLab, target string) {
	expect := func(t *testing.T, got result, stdout string, code int) {
		t.Helper()
		if got.stdout != stdout || got.code != code {
			t.Errorf("got stdout %q exit %d (stderr %q), want %q exit %d", got.stdout, got.code, got.stderr, stdout, code)
		}
	}
	t.Run("echo", func(t *testing.T) {
		expect(t, lab.call(t, "hello\nworld\n", target, "test.Echo"), "hello\nworld\n", 0)
	})
	t.Run("empty service, no input", func(t *testing.T) {
		expect(t, lab.call(t, "", target, "test.Empty"), "", 0)
	})
	t.Run("stdin EOF then stdout", func(t *testing.T) {
		expect(t, lab.call(t, strings.Repeat("x", 300000), target, "test.Count"), "300000\n", 0)
	})
	t.Run("exit codes", func(t *testing.T) {
		for _, code := range []int{0, 1, 3, 42, 255} {
			expect(t, lab.call(t, "", target, fmt.Sprintf("test.Exit+%d", code)), "", code)
		}
	})
	t.Run("refused by policy", func(t *testing.T) {
		expect(t, lab.call(t, "", target, "test.Denied"), "", 126)
	})
	t.Run("missing service", func(t *testing.T) {
		expect(t, lab.call(t, "", target, "test.Missing"), "", 127)
	})
	t.Run("SERVICE+ARG before SERVICE, argument as argv[1]", func(t *testing.T) {
		expect(t, lab.call(t, "", target, "test.Arg+specific"), "specific specific\n", 0)
		expect(t, lab.call(t, "", target, "test.Arg+other"), "generic other\n", 0)
		expect(t, lab.call(t, "", target, "test.Named+x"), "named x\n", 0)
	})
	t.Run("stderr goes to the target's log, never to the caller", func(t *testing.T) {
		got := lab.call(t, "", target, "test.Stderr")
		expect(t, got, "visible\n", 0)
		if strings.Contains(got.stderr, "SECRET") {
			t.Errorf("service stderr reached the caller: %q", got.stderr)
		}
		if !strings.Contains(lab.log(t, target), "SECRET-ON-STDERR") {
			t.Errorf("service stderr missing from %s", lab.logs[target])
		}
	})
	t.Run("environment set by dom0, caller's QREXEC_* ignored (C3)", func(t *testing.T) {
		want := fmt.Sprintf("QREXEC_REMOTE_DOMAIN=vm1\nQREXEC_REQUESTED_TARGET=%s\nQREXEC_REQUESTED_TARGET_TYPE=name\n"+
			"QREXEC_SERVICE_ARGUMENT=a.b-c\nQREXEC_SERVICE_FULL_NAME=test.Env+a.b-c\nargv1=a.b-c\n", target)
		expect(t, lab.call(t, "", target, "test.Env+a.b-c"), want, 0)
		want = "QREXEC_REMOTE_DOMAIN=vm1\nQREXEC_REQUESTED_TARGET_KEYWORD=adminvm\nQREXEC_REQUESTED_TARGET_TYPE=keyword\n" +
			"QREXEC_SERVICE_FULL_NAME=test.Env\nargv1=\n"
		if target == "dom0" {
			expect(t, lab.call(t, "", "@adminvm", "test.Env"), want, 0)
		}
	})
	t.Run("local program connected to the service", func(t *testing.T) {
		// sh writes to the service and reads its answer: stdin and stdout
		// are the service's, the exit status is the program's.
		got := lab.call(t, "", target, "test.Echo", "/bin/sh", "-c", "echo ping; read line; test \"$line\" = ping && exit 9")
		expect(t, got, "", 9)
	})
	t.Run("a service that does not read its stdin", func(t *testing.T) {
		expect(t, lab.call(t, strings.Repeat("x", 4<<20), target, "test.Empty"), "", 0)
	})
	t.Run("a local program that does not read the service's stdout", func(t *testing.T) {
		got := lab.call(t, "", target, "test.Echo", "/bin/sh", "-c", "head -c 4000000 /dev/zero; exit 5")
		expect(t, got, "", 5)
	})
	t.Run("1 GiB with SHA-256", func(t *testing.T) { largeTransfer(t, lab, target, 1<<30) })
}

// largeTransfer sends n pseudo-random bytes through test.Echo and checks
// that the same bytes come back.
func largeTransfer(t testing.TB, lab *testLab, target string, n int64) {
	cmd := command(t, "qrexec-client-vm", target, "test.Echo")
	cmd.Env = append(os.Environ(), "PEDOS_QREXEC_SOCKET="+lab.callerAddr)
	cmd.Stderr = os.Stderr
	sent, received := sha256.New(), sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), n), sent)
	cmd.Stdin = src
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got, copyErr := io.Copy(received, out)
	if err := cmd.wait(t); err != nil || copyErr != nil || got != n {
		t.Fatalf("got %d of %d bytes (%v), exit %v", got, n, copyErr, err)
	}
	if fmt.Sprintf("%x", sent.Sum(nil)) != fmt.Sprintf("%x", received.Sum(nil)) {
		t.Fatal("the bytes that came back differ from those sent")
	}
}

func conformanceCommands(t *testing.T, lab *testLab) {
	got := lab.runInVM2(t, "input\n", "vm2", "cat; echo to-stderr >&2; exit 7")
	if got.stdout != "input\n" || got.stderr != "to-stderr\n" || got.code != 7 {
		t.Errorf("pedos-run: got %+v", got)
	}
	got = lab.runInVM2(t, "", "vm2", "env | grep -c ^QREXEC || true")
	if got.stdout != "0\n" {
		t.Errorf("command saw QREXEC variables: %+v", got)
	}
	client := command(t, "qrexec-client", "-d", "vm2", "--domains", lab.domainsFile,
		"--sockdir", lab.sockDir, "DEFAULT:read x; echo got $x; exit 4")
	got = run(t, client, "word\n")
	if got.stdout != "got word\n" || got.code != 4 {
		t.Errorf("qrexec-client: got %+v", got)
	}
}

// TestServiceFilesThatCannotRun: a script someone forgot to make executable
// is refused, not run without its shell (its first command would get "$@"
// literally); so is a directory, and a symbolic link to nothing, which is
// no reason to run the generic SERVICE in place of SERVICE+ARG. The caller
// gets 125 and the target's log says what to fix.
func TestServiceFilesThatCannotRun(t *testing.T) {
	lab := newTestLab(t, transports[0])
	for _, dir := range lab.serviceDirs {
		writeFile(t, filepath.Join(dir, "test.Script"), "#!/bin/sh\necho body \"$@\"\n", 0o644)
		mkdir(t, filepath.Join(dir, "test.Dir"))
		writeFile(t, filepath.Join(dir, "test.BadInterp"), "#!/nonexistent/sh\necho hi\n", 0o755)
		writeFile(t, filepath.Join(dir, "test.NoShebang"), "echo hi\n", 0o755)
		if err := os.Symlink("/nonexistent/handler", filepath.Join(dir, "test.Echo+x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, target := range []string{"dom0", "vm2"} {
		for service, why := range map[string]string{
			"test.Script":    "test.Script is a script that is not executable: chmod +x it",
			"test.Dir":       "test.Dir: not a regular file (mode d",
			"test.Echo":      "test.Echo+x: a symbolic link to nothing",
			"test.BadInterp": "its interpreter, the #! line, or its dynamic loader is missing",
			"test.NoShebang": "neither a program for this machine nor a script with a #! line",
		} {
			if got := lab.call(t, "", target, service+"+x"); got.code != qrexec.ExitFailure || got.stdout != "" {
				t.Errorf("%s in %s: %+v", service, target, got)
			}
			waitForLog(t, lab, target, why)
		}
	}
}

// A service's stderr goes to the log, not to the caller (qrexec.md), so it
// does not hold the call's end: a background job the service left running
// with its stderr does not keep the caller waiting (stdout would: it is the
// caller's data). The job outlives the call, which ended without it.
func TestBackgroundJobWithStderrHoldsNotTheCall(t *testing.T) {
	lab := newTestLab(t, transports[0])
	for _, dir := range lab.serviceDirs {
		writeFile(t, filepath.Join(dir, "test.Background"), "#!/bin/sh\necho before >&2\nsleep 120 >/dev/null </dev/null &\necho $!\n", 0o755)
	}
	for _, target := range []string{"dom0", "vm2"} {
		got := lab.call(t, "", target, "test.Background")
		pid, err := strconv.Atoi(strings.TrimSpace(got.stdout))
		if got.code != 0 || err != nil {
			t.Fatalf("%s: %+v", target, got)
		}
		// Still running after the call: the call did not wait for it. Held
		// by a pidfd, so that the kill cannot reach another process.
		job, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("%s: the background job %d is gone before the call ended: %v", target, pid, err)
		}
		unix.PidfdSendSignal(job, unix.SIGKILL, nil, 0)
		unix.Close(job)
		waitForLog(t, lab, target, "line=before")
	}
}

// The service's stderr is read to its end, not only to the service's exit:
// a line a background job writes there after the call ended still reaches
// the log (qrexec.md: a service's stderr goes to the log), and the pipe is
// not closed under the job (which would lose the line, or kill the job with
// SIGPIPE).
func TestBackgroundJobsLaterStderrIsLogged(t *testing.T) {
	lab := newTestLab(t, transports[0])
	flagDir := t.TempDir()
	if err := os.Chmod(flagDir, 0o755); err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(flagDir, "call-ended")
	for _, dir := range lab.serviceDirs {
		// Bounded: the job ends within a minute whatever happens.
		writeFile(t, filepath.Join(dir, "test.Later"), "#!/bin/sh\n(i=0; while [ ! -e "+flag+" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; echo after-the-call >&2) >/dev/null </dev/null &\n", 0o755)
	}
	for _, target := range []string{"dom0", "vm2"} {
		if err := os.RemoveAll(flag); err != nil {
			t.Fatal(err)
		}
		if got := lab.call(t, "", target, "test.Later"); got.code != 0 {
			t.Fatalf("%s: %+v", target, got)
		}
		writeFile(t, flag, "", 0o644) // the job writes its line now, after the call
		waitForLog(t, lab, target, "line=after-the-call")
	}
}

// A call leaves no descriptor behind in the daemon or the agent: the pipe of
// a service's stderr is closed once read to its end, and at once when the
// service cannot start (a file without #!). A long-running daemon that
// leaked one a call would run out of them (EMFILE) and refuse every call.
func TestCallsLeaveNoDescriptorOpen(t *testing.T) {
	lab := newTestLab(t, transports[0])
	for _, dir := range lab.serviceDirs {
		writeFile(t, filepath.Join(dir, "test.NoShebang"), "echo hi\n", 0o755)
	}
	openFDs := func(p *os.Process) int {
		entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	for _, target := range []string{"dom0", "vm2"} {
		process := map[string]*exec.Cmd{"dom0": lab.daemon, "vm2": lab.agent}[target].Process
		lab.call(t, "", target, "test.Stderr") // warmed up: whatever the first call opens for good
		lab.call(t, "", target, "test.NoShebang")
		before := openFDs(process)
		for range 3 {
			if got := lab.call(t, "", target, "test.Stderr"); got.code != 0 {
				t.Fatalf("%s: test.Stderr: %+v", target, got)
			}
			if got := lab.call(t, "", target, "test.NoShebang"); got.code == 0 {
				t.Fatalf("%s: test.NoShebang ran: %+v", target, got)
			}
		}
		// The last call's own may take a moment to close after its end.
		var after int
		for range 100 {
			if after = openFDs(process); after <= before {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if after > before {
			t.Errorf("%s: %d descriptors open before six calls, %d after", target, before, after)
		}
	}
}

// TestServiceAsUserWithoutHome: user= runs a service with that user's ids
// and groups, never the daemon's, in its home directory or in "/" when it
// has none (nobody's /nonexistent); a relative --service-dir still names
// the directory it named where the daemon and agent were started.
func TestServiceAsUserWithoutHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching to another user needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	groupIDs, err := nobody.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	wantDir := "/"
	if fi, err := os.Stat(nobody.HomeDir); err == nil && fi.IsDir() {
		wantDir = nobody.HomeDir
	}
	start := func(t testing.TB, lab *testLab) {
		// nobody must reach its service through the test's directories.
		for _, dir := range []string{filepath.Dir(lab.dir), lab.dir} {
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for domain, dir := range lab.serviceDirs {
			writeFile(t, filepath.Join(dir, "test.Id"), "#!/bin/sh\nid -u; id -G | tr ' ' '\\n' | sort -u | tr '\\n' ' '; echo; pwd\n", 0o755)
			if lab.serviceDirs[domain], err = filepath.Rel(wd, dir); err != nil {
				t.Fatal(err)
			}
		}
		lab.startUnixDaemon(t)
	}
	lab := newTestLab(t, transport{"unix", noSettings, start})
	lab.setPolicy(t, "test.Id * @anyvm @anyvm allow user=nobody\ntest.Id * @anyvm dom0 allow user=nobody\n")
	slices.Sort(groupIDs)
	want := fmt.Sprintf("%s\n%s \n%s\n", nobody.Uid, strings.Join(slices.Compact(groupIDs), " "), wantDir)
	for _, target := range []string{"dom0", "vm2"} {
		if got := lab.call(t, "", target, "test.Id"); got.code != 0 || got.stdout != want {
			t.Errorf("as nobody in %s: %+v, want stdout %q", target, got, want)
		}
	}
}

// TestServiceAsTheAgentsOwnUser: user= naming the user the daemon and
// agent already run as needs no switch, but the service still starts in
// that user's home directory with its HOME, USER and LOGNAME, as for any
// other user (it had run in the agent's working directory with USER empty).
func TestServiceAsTheAgentsOwnUser(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skipf("no user database entry for uid %d: %v", os.Geteuid(), err)
	}
	wantDir := "/"
	if fi, err := os.Stat(me.HomeDir); err == nil && fi.IsDir() {
		wantDir = me.HomeDir
	}
	lab := newTestLab(t, transports[0])
	for _, dir := range lab.serviceDirs {
		writeFile(t, filepath.Join(dir, "test.Who"), "#!/bin/sh\npwd; echo \"$HOME $USER $LOGNAME\"\n", 0o755)
	}
	lab.setPolicy(t, fmt.Sprintf("test.Who * @anyvm @anyvm allow user=%s\ntest.Who * @anyvm dom0 allow user=%s\n", me.Username, me.Username))
	want := fmt.Sprintf("%s\n%s %s %s\n", wantDir, me.HomeDir, me.Username, me.Username)
	for _, target := range []string{"dom0", "vm2"} {
		if got := lab.call(t, "", target, "test.Who"); got.code != 0 || got.stdout != want {
			t.Errorf("as %s in %s: %+v, want stdout %q", me.Username, target, got, want)
		}
	}
}
