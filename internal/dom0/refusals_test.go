package dom0_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/benchrun"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/qfile"
	"pedos.dev/updates/internal/qfile/qfilesend"
	"pedos.dev/updates/internal/testrepo"
)

// C1: a call from any domain but the UpdateVM is refused before a byte is
// read, and the session stays unclaimed for the UpdateVM.
func TestServeRefusesAnotherCaller(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	c.UpdateVM = "sys-update"
	session, err := startSession(t, c, dom0.Session{Action: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	stdin := strings.NewReader("a stream")
	r := &dom0.Receiver{Config: c, Log: &strings.Builder{}, Now: time.Now}
	err = r.Serve(t.Context(), "sys-net", session.ID, stdin, &strings.Builder{})
	if !errors.Is(err, dom0.ErrRefused) || !strings.Contains(err.Error(), "only the UpdateVM sys-update") {
		t.Errorf("a call from sys-net: %v, want refused", err)
	}
	if stdin.Len() != len("a stream") {
		t.Error("the refused call's input was read")
	}
	if _, err := os.Stat(filepath.Join(c.Path(dom0.StateDir), dom0.SessionFile)); err != nil {
		t.Errorf("the session is gone after a refused call: %v", err)
	}
	// The caller's name is qrexec's word, but it is quoted in the message
	// if it holds anything a terminal would act on.
	err = r.Serve(t.Context(), "sys\x1b[31m\nforged", session.ID, stdin, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), `domain "sys\x1b[31m\nforged" called`) {
		t.Errorf("a call from an odd name: %v, want it quoted", err)
	}
}

// F3: one lock holder at a time; the lock is free again once released.
func TestLockFileIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "update.lock")
	unlock, err := dom0.LockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dom0.LockFile(path); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Errorf("a second lock while the first is held: %v, want EWOULDBLOCK", err)
	}
	unlock()
	unlock, err = dom0.LockFile(path)
	if err != nil {
		t.Fatalf("the lock after its release: %v", err)
	}
	unlock()
}

// A session whose deadline passes after it was claimed (the claim is the
// last moment it is checked there) gets no unpacker: nothing is received.
func TestSessionExpiringAfterTheClaim(t *testing.T) {
	c, batch := benchDom0(t, nil)
	res, _, err := deliverStaged(t, c, batch.Files(), "", func(r *dom0.Receiver, s dom0.Session) {
		claimed := false
		r.Now = func() time.Time { // the claim reads the clock first
			if !claimed {
				claimed = true
				return time.Now()
			}
			return s.Deadline.Add(time.Second)
		}
	})
	if err == nil || res.Accepted || !strings.Contains(res.Error, "the session expired before the delivery started") {
		t.Errorf("accepted %v (%v): %s; want the delivery refused as expired", res.Accepted, err, res.Error)
	}
}

// F1: what a killed receive left in the staging and scratch directories is
// removed by the next delivery.
func TestLeftoversOfAKilledReceiveAreRemoved(t *testing.T) {
	c, batch := benchDom0(t, nil)
	var leftovers []string
	for _, dir := range []string{dom0.StagingDir, dom0.ScratchDir} {
		leftover := filepath.Join(c.Path(dir), "killed-session", "hello-1.0-1.noarch.rpm")
		if err := os.MkdirAll(filepath.Dir(leftover), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(leftover, []byte("half a package"), 0o600); err != nil {
			t.Fatal(err)
		}
		leftovers = append(leftovers, filepath.Dir(leftover))
	}
	if res, log, err := deliverStaged(t, c, batch.Files(), ""); err != nil || !res.Accepted {
		t.Fatalf("delivery: %v, %s; log:\n%s", err, res.Error, log)
	}
	for _, leftover := range leftovers {
		if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", leftover, err)
		}
	}
}

// P1: a package the native verifier accepts and rpmkeys refuses refuses the
// delivery as a disagreement. The key signs with a go-crypto subkey, which
// rpm 4.18 cannot import (testrepo's doc): dom0's keyring and its pin trust
// it, rpmkeys knows no key for the packages.
func TestVerifiersDisagree(t *testing.T) {
	subkeySigner, err := testrepo.NewSigner(testrepo.KeySpec{Name: "subkey signer", SigningSubkey: true})
	if err != nil {
		t.Fatal(err)
	}
	c, batch := benchDom0(t, subkeySigner)
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err == nil || res.Accepted || !strings.Contains(res.Error, "package(s) failed verification") {
		t.Fatalf("accepted %v (%v): %s; log:\n%s", res.Accepted, err, res.Error, log)
	}
	for _, p := range res.Packages {
		if p.Kind != "verifiers disagree" {
			t.Errorf("package %s: %+v, want refused as a disagreement", p.File, p)
		}
	}
	assertNothingPublished(t, c)
}

// benchDom0 is a benchmark dom0 and a batch of three packages for it. With
// packages, the batch is signed by that key instead, which replaces the
// benchmark key in dom0's keyring and pin (after the rpm database took the
// benchmark key).
func benchDom0(t *testing.T, packages *testrepo.Signer) (dom0.Config, benchrun.Batch) {
	t.Helper()
	c, signer := benchRoot(t)
	if packages != nil {
		signer = packages
		if err := os.WriteFile(c.Path(c.MetadataKeys[benchrun.RepoID]), signer.PublicKeyArmored(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := benchrun.MakeBatch(t.TempDir(), "refuse", []int{4 << 10, 16 << 10, 64 << 10}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return c, batch
}

// benchRoot is benchrun's dom0 below a temporary root, trusting benchrun's
// first key, and that key.
func benchRoot(t *testing.T) (dom0.Config, *testrepo.Signer) {
	t.Helper()
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := benchrun.NewDom0Root(t.Context(), t.TempDir(), signer)
	if err != nil {
		t.Fatal(err)
	}
	return c, signer
}

// S4 in dom0: the service runs the unpacker in its regular-files-only mode,
// so a directory in the stream is the unpacker's refusal (EINVAL), before
// anything is created.
func TestServiceUnpackerTakesRegularFilesOnly(t *testing.T) {
	cmd, c, id := receiveCmd(t)
	var stream []byte
	stream = qfilesend.AppendHeader(stream, qfile.Header{NameLen: 4, Mode: qfile.ModeDir | 0o755})
	stream = append(stream, "dir\x00"...)
	stream = qfilesend.AppendHeader(stream, qfile.Header{})
	cmd.Stdin = bytes.NewReader(stream)
	var log strings.Builder
	cmd.Stderr = &log
	runErr := cmd.Run()
	res, err := frontend.ReadResult(c, id)
	var exit *exec.ExitError
	if !errors.As(runErr, &exit) || err != nil || res.Accepted || !strings.Contains(res.Error, "a file type or header field the receiver does not accept (EINVAL)") {
		t.Errorf("service: %v; result %+v (%v); want the unpacker's EINVAL; log:\n%s", runErr, res, err, log.String())
	}
}

// A result that cannot be written is said on the same line as the
// delivery's own failure: the journal shows one line per service error.
func TestResultWriteFailureIsOneLine(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	c.UpdateVM = "sys-update"
	session, err := startSession(t, c, dom0.Session{Action: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	// A directory with something in it where the result goes: no rename can replace it.
	if err := os.MkdirAll(filepath.Join(c.Path(dom0.StateDir), dom0.ResultFile, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &dom0.Receiver{Config: c, Unpacker: filepath.Join(t.TempDir(), "no-unpacker"), Log: &strings.Builder{}, Now: time.Now}
	err = r.Serve(t.Context(), "sys-update", session.ID, strings.NewReader(""), &strings.Builder{})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "; the result for the front end could not be written: ") {
		t.Errorf("a failed delivery whose result cannot be written: %q, want both on one line", err)
	}
}
