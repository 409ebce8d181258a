package dom0_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/benchrun"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/qfile"
	"pedos.dev/updates/internal/qfile/qfilesend"
	"pedos.dev/updates/internal/testbin"
)

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// receiveCmd is the real service for a new session in a fresh benchmark dom0 (its
// updates.conf, keyring and rpm database), with the unpacker next to it, run through
// wrapper (e.g. setpriv) if one is given.
func receiveCmd(t *testing.T, wrapper ...string) (*exec.Cmd, dom0.Config, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the service switches the unpacker to another user: needs root")
	}
	c, _ := benchRoot(t)
	session, err := startSession(t, c, dom0.Session{Action: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	args := append(wrapper, testbin.Path(t, "pedos-receive-updates"), "--root", c.Root,
		"--unpacker", testbin.Path(t, "qfile-dom0-unpacker"), session.ID)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "QREXEC_REMOTE_DOMAIN=" + benchrun.UpdateVM}
	return cmd, c, session.ID
}

// streamOf is a qfile stream of files, as qfile-agent sends it.
func streamOf(t *testing.T, files []string) []byte {
	t.Helper()
	var s bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		s.Write(qfilesend.AppendHeader(nil, qfile.Header{NameLen: uint32(len(name) + 1), Mode: qfile.ModeRegular | 0o644, FileLen: uint64(len(data))}))
		s.WriteString(name + "\x00")
		s.Write(data)
	}
	s.Write(qfilesend.AppendHeader(nil, qfile.Header{}))
	return s.Bytes()
}

// A service manager may forbid the unpacker's pid namespace (our unit keeps no CAP_SYS_ADMIN
// and restricts namespaces): the delivery still goes through, and the log says how the
// unpacker ran.
func TestDeliveryWithoutPIDNamespace(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv here")
	}
	// The capabilities and no-new-privs of packaging/systemd/pedos-qrexec-daemon.service.
	cmd, c, id := receiveCmd(t, "setpriv", "--no-new-privs", "--inh-caps=-all",
		"--bounding-set=-all,+chown,+setuid,+setgid,+dac_override,+dac_read_search,+fowner,+kill")
	_, log := deliverAccepted(t, cmd, c, id, "nopidns", 4<<10, 64<<10)
	if !strings.Contains(log, "the unpacker runs without a pid namespace of its own") {
		t.Errorf("the log does not say the unpacker ran without its pid namespace:\n%s", log)
	}
}

// deliverAccepted streams signed packages of the given sizes into the service cmd for session
// id and returns the result, which must accept them all, and the service's log.
func deliverAccepted(t *testing.T, cmd *exec.Cmd, c dom0.Config, id, prefix string, sizes ...int) (dom0.Result, string) {
	t.Helper()
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := benchrun.MakeBatch(t.TempDir(), prefix, sizes, signer)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = bytes.NewReader(streamOf(t, batch.Files()))
	var log strings.Builder
	cmd.Stderr = &log
	runErr := cmd.Run()
	res, err := frontend.ReadResult(c, id)
	if runErr != nil || err != nil || !res.Accepted || len(res.Packages) != len(sizes) {
		t.Fatalf("service: %v; result %+v (%v); log:\n%s", runErr, res, err, log.String())
	}
	return res, log.String()
}

// A receive service that is killed takes its unpacker with it (F1): a stream kept open in
// the middle of a file must not keep an unpacker writing into a staging directory that the
// next delivery removes.
func TestUnpackerDiesWithTheService(t *testing.T) {
	cmd, c, _ := receiveCmd(t)
	stream, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	cmd.Stdin = stream
	// A process group of its own, so that what the killed service leaves
	// besides the unpacker (its background rpmkeys) is stopped at the end,
	// as the daemon stops a service's group, before the root is removed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait() // reaped: a zombie leader would keep its group answering
		for deadline := time.Now().Add(10 * time.Second); syscall.Kill(-cmd.Process.Pid, 0) == nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}()
	stream.Close()
	// A file of 1000 bytes announced, 10 sent.
	feed.Write(qfilesend.AppendHeader(nil, qfile.Header{NameLen: 6, Mode: qfile.ModeRegular | 0o644, FileLen: 1000}))
	feed.Write([]byte("a.rpm\x000123456789"))
	unpackers := func() []int {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			argv := strings.Split(string(cmdline), "\x00")
			if pid, perr := strconv.Atoi(e.Name()); perr == nil && err == nil && len(argv) > 2 &&
				filepath.Base(argv[0]) == "qfile-dom0-unpacker" && strings.HasPrefix(argv[2], c.Root) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	defer func() {
		for _, pid := range unpackers() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	waitFor := func(what string, done func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !done(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: gave up after 10 s", what)
			}
		}
	}
	// The unpacker reads the stream only once it has asked to die with its caller (a
	// service killed before that is not noticed in the unpacker's pid namespace, where its
	// parent is always 0): wait until it is blocked reading the rest of the file.
	waitFor("the unpacker reading the stream", func() bool {
		pids := unpackers()
		if len(pids) == 0 {
			return false
		}
		tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pids[0]), "task", "*", "wchan"))
		for _, task := range tasks {
			if wchan, err := os.ReadFile(task); err == nil && strings.Contains(string(wchan), "pipe_read") {
				return true
			}
		}
		return false
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitFor("the unpacker dying with the service", func() bool { return len(unpackers()) == 0 })
}

// A staging file system with no room left: the service refuses the delivery, saying so,
// rather than asking the unpacker for a limit of 0 bytes (which the unpacker refuses, being
// the reference's "unlimited"). The space is held by a file removed but still open, as the
// service clears the staging directory's parent first.
func TestNoRoomForADelivery(t *testing.T) {
	cmd, c, id := receiveCmd(t)
	parent := c.Path(dom0.StagingDir)
	if err := os.MkdirAll(parent, 0o711); err != nil {
		t.Fatal(err)
	}
	testbin.Tmpfs(t, parent, "size=256k")
	filler, err := os.Create(filepath.Join(parent, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	if _, err := filler.Write(make([]byte, 1<<20)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the staging file system: %v, want ENOSPC", err)
	}
	cmd.Stdin = bytes.NewReader(streamOf(t, nil))
	var log strings.Builder
	cmd.Stderr = &log
	runErr := cmd.Run()
	res, err := frontend.ReadResult(c, id)
	if runErr == nil || err != nil || res.Accepted || !strings.Contains(res.Error, "no room for a delivery") {
		t.Fatalf("service: %v; result %+v (%v); want a refusal saying there is no room; log:\n%s", runErr, res, err, log.String())
	}
}

// Each accepted package's record has verify.md §1.5's structured result: NEVRA, every signer,
// the signed header's SHA-256 and the payload digest, besides the file's own SHA-256. And an
// update log that cannot be written is a warning in the service's own log, not silence.
func TestDeliveryRecords(t *testing.T) {
	cmd, c, id := receiveCmd(t)
	if err := os.MkdirAll(c.Path(dom0.LogPath), 0o750); err != nil { // a directory: no file can be opened there
		t.Fatal(err)
	}
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	res, log := deliverAccepted(t, cmd, c, id, "digests", 4<<10)
	p := res.Packages[0]
	if p.NEVRA == "" || len(p.Signers) != 1 || p.Signers[0] != signer.Fingerprint() || len(p.HeaderSHA256) != 64 ||
		!strings.HasPrefix(p.PayloadDigest, "sha256:") || len(p.PayloadDigest) != len("sha256:")+64 || len(p.SHA256) != 64 {
		t.Errorf("package record %+v lacks part of the structured result", p)
	}
	if !strings.Contains(log, "warning: the delivery is not in "+dom0.LogPath) {
		t.Errorf("no warning about the update log:\n%s", log)
	}
}

// The tools the receive runs as root are looked up in its fixed --tool-path,
// never in the PATH it was started with: sudo keeps the caller's PATH where
// sudoers has no secure_path (the PedOS/Qubes wrapper), and a caller's
// rpmkeys would run as root.
func TestReceiveIgnoresCallersPATH(t *testing.T) {
	cmd, c, id := receiveCmd(t)
	evil := t.TempDir()
	ran := filepath.Join(evil, "ran")
	for _, tool := range []string{"rpmkeys", "rpm", "createrepo_c"} {
		if err := os.WriteFile(filepath.Join(evil, tool), []byte("#!/bin/sh\ntouch "+ran+"\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd.Env = []string{"PATH=" + evil + ":/usr/bin:/bin:/usr/sbin:/sbin", "QREXEC_REMOTE_DOMAIN=" + benchrun.UpdateVM}
	deliverAccepted(t, cmd, c, id, "path", 4<<10)
	if _, err := os.Stat(ran); err == nil {
		t.Error("the receive ran a tool from the PATH it was started with")
	}
}

// Everything the service does ends at the session's deadline (S11, C7), not only the stream
// (the unpacker's --timeout) and the publication (TestPublishAfterTheDeadline): a stage
// after the unpack that hangs (here createrepo_c, a stand-in that never ends) is stopped
// then, so that the service does not hold receive.lock after the front end gave up.
func TestReceiveEndsAtTheSessionDeadline(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the service switches the unpacker to another user: needs root")
	}
	c, _ := benchRoot(t)
	session, err := startSession(t, c, dom0.Session{Action: "upgrade", Deadline: time.Now().Add(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	hanging := t.TempDir()
	if err := os.WriteFile(filepath.Join(hanging, "createrepo_c"), []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := benchrun.MakeBatch(t.TempDir(), "late", []int{4 << 10}, signer)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testbin.Path(t, "pedos-receive-updates"), "--root", c.Root, "--unpacker", testbin.Path(t, "qfile-dom0-unpacker"),
		"--tool-path", hanging+":/usr/bin:/bin:/usr/sbin:/sbin", session.ID)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "QREXEC_REMOTE_DOMAIN=" + benchrun.UpdateVM}
	cmd.Stdin = bytes.NewReader(streamOf(t, batch.Files()))
	var log strings.Builder
	cmd.Stderr = &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // to stop the stand-in with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("the service was still running a minute after the session's deadline; log:\n%s", log.String())
	}
	res, err := frontend.ReadResult(c, session.ID)
	if err != nil || res.Accepted || !strings.Contains(res.Error, "deadline") {
		t.Errorf("result %+v (%v); want a refusal naming the session's deadline; log:\n%s", res, err, log.String())
	}
	assertNothingPublished(t, c)
}
