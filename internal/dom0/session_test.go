package dom0_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
)

// startSession starts a session as pedos-dom0-update does, holding it
// until the test ends.
func startSession(t *testing.T, c dom0.Config, s dom0.Session) (dom0.Session, error) {
	t.Helper()
	s, release, err := frontend.NewSession(c, s, nil, io.Discard)
	if err == nil {
		t.Cleanup(release)
	}
	return s, err
}

// upgradeSession is a fresh dom0 root with a live session for an upgrade.
func upgradeSession(t *testing.T) (dom0.Config, dom0.Session) {
	t.Helper()
	c := dom0.DefaultConfig(t.TempDir())
	s, err := startSession(t, c, dom0.Session{Action: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// C2: a delivery is accepted only for the live session, once, in time.
func TestClaimSession(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	now := time.Now()
	if _, err := dom0.ClaimSession(c, strings.Repeat("0", 32), now); !errors.Is(err, dom0.ErrNoSession) {
		t.Fatalf("claim without a session: %v, want dom0.ErrNoSession", err)
	}
	s, err := startSession(t, c, dom0.Session{Action: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.ID) != 32 {
		t.Fatalf("session id %q is not 128 bits of hex", s.ID)
	}
	// lastDigitOff differs only at the end: a comparison of a prefix would take it.
	lastDigitOff := s.ID[:31] + map[bool]string{true: "1", false: "0"}[s.ID[31] == '0']
	for _, bad := range []string{"", s.ID[:31], s.ID + "0", strings.ToUpper(s.ID), strings.Repeat("a", 32), lastDigitOff} {
		if _, err := dom0.ClaimSession(c, bad, now); err == nil {
			t.Errorf("claim with id %q succeeded", bad)
		}
	}
	if _, err := dom0.ClaimSession(c, s.ID, s.Deadline.Add(time.Second)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("claim after the deadline: %v", err)
	}
	got, err := dom0.ClaimSession(c, s.ID, now)
	if err != nil || got.ID != s.ID || got.Action != "upgrade" {
		t.Fatalf("claim = %+v, %v", got, err)
	}
	if _, err := dom0.ClaimSession(c, s.ID, now); !errors.Is(err, dom0.ErrNoSession) {
		t.Errorf("second claim of the same session: %v, want dom0.ErrNoSession", err)
	}
}

func TestResultIsBoundToSession(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	s, err := startSession(t, c, dom0.Session{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := frontend.ReadResult(c, s.ID); !errors.Is(err, frontend.ErrNoResult) {
		t.Fatalf("result before delivery: %v", err)
	}
	if err := dom0.WriteResult(c, dom0.Result{Session: "other", Accepted: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := frontend.ReadResult(c, s.ID); !errors.Is(err, frontend.ErrNoResult) {
		t.Errorf("a result of another session was taken: %v", err)
	}
	if err := dom0.WriteResult(c, dom0.Result{Session: s.ID, Accepted: true}); err != nil {
		t.Fatal(err)
	}
	if r, err := frontend.ReadResult(c, s.ID); err != nil || !r.Accepted {
		t.Errorf("ReadResult = %+v, %v", r, err)
	}
}

// C2: a session whose pedos-dom0-update was killed outright (it left the
// session file, and its hold on it died with it) cannot be claimed, also
// while the next update runs.
func TestClaimSessionOfAnEndedUpdate(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	unlock, err := frontend.Lock(c)
	if err != nil {
		t.Fatal(err)
	}
	s, release, err := frontend.NewSession(c, dom0.Session{Action: "upgrade"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	release()
	if _, err := dom0.ClaimSession(c, s.ID, time.Now()); err == nil || !strings.Contains(err.Error(), "no longer running") {
		t.Errorf("claim of a session whose update ended: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(c.Path(dom0.StateDir), dom0.SessionFile)); err != nil {
		t.Errorf("the refused claim took the session file: %v", err)
	}
	// The next update has taken the update lock, and not yet removed the
	// dead run's session: that session is still void.
	next, err := dom0.LockFile(filepath.Join(c.Path(dom0.StateDir), frontend.UpdateLockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer next()
	if _, err := dom0.ClaimSession(c, s.ID, time.Now()); err == nil || !strings.Contains(err.Error(), "no longer running") {
		t.Errorf("the killed update's session, while the next update holds the update lock: %v, want a refusal", err)
	}
}

// A session file without the repository list (one an older front end wrote) is refused: read
// as none, it would have the freshness checks expect no repository at all (M1, M2).
func TestClaimSessionWithoutRepos(t *testing.T) {
	c, s := upgradeSession(t)
	live := filepath.Join(c.Path(dom0.StateDir), dom0.SessionFile)
	old := fmt.Sprintf(`{"id": %q, "created": %q, "deadline": %q, "action": "upgrade"}`,
		s.ID, s.Created.Format(time.RFC3339Nano), s.Deadline.Format(time.RFC3339Nano))
	if err := os.WriteFile(live, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dom0.ClaimSession(c, s.ID, time.Now()); err == nil || !strings.Contains(err.Error(), "lists no repositories") {
		t.Errorf("claim of a session without repositories: %v, want a refusal", err)
	}
}

// A FIFO at the session's or the result's path (something other than the
// files dom0 writes there) is refused at once by the service's claim and
// the front end's read of the result: neither waits on it for good.
func TestStateFilesThatAreFIFOs(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	state := c.Path(dom0.StateDir)
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{dom0.SessionFile, dom0.ResultFile} {
		if err := syscall.Mkfifo(filepath.Join(state, name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := dom0.ClaimSession(c, strings.Repeat("a", dom0.SessionIDLength), time.Now()); err == nil || !strings.Contains(err.Error(), "not a regular file: a FIFO") {
			t.Errorf("ClaimSession with a FIFO for the session: %v", err)
		}
		if _, err := frontend.ReadResult(c, "s"); err == nil || !strings.Contains(err.Error(), "not a regular file: a FIFO") {
			t.Errorf("ReadResult with a FIFO for the result: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a FIFO in the state directory is waited on")
	}
}

// A session past 1 MiB (an id, times, the names asked for: 32,000 names fit
// on a command line) is refused by the front end before anything is sent,
// not by the receive service after a whole download; one there all the
// same is not read whole: the claim refuses it naming the file, and leaves
// it unclaimed (C2: only the live session, as the front end wrote it, is
// claimed).
func TestClaimSessionRefusesAnOversizedSession(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	many := dom0.Session{Action: "install", Packages: slices.Repeat([]string{strings.Repeat("p", 256)}, 5000)}
	if _, err := startSession(t, c, many); err == nil || !strings.Contains(err.Error(), "more than the 1048576 dom0's receive service reads: name fewer packages") {
		t.Errorf("a session over 1 MiB: %v, want the front end to refuse it", err)
	}
	s, err := startSession(t, c, dom0.Session{Action: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(c.Path(dom0.StateDir), dom0.SessionFile)
	f, err := os.OpenFile(live, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.Write(make([]byte, dom0.MaxSessionBytes)) // past the bound, the JSON whole before it
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dom0.ClaimSession(c, s.ID, time.Now()); err == nil || !strings.Contains(err.Error(), live+": larger than 1048576 bytes") {
		t.Errorf("ClaimSession of a session over 1 MiB: %v, want refused naming %s", err, live)
	}
	if _, err := os.Lstat(live); err != nil {
		t.Errorf("the oversized session was claimed (%v)", err)
	}
}

// A directory left at the claimed session's name (or the progress file's)
// is found by the front end before anything is downloaded, naming it; and a
// claim that cannot rename the session there says so, rather than "no
// update session is waiting" (only the other delivery's claim is that).
func TestClaimedSessionNameTaken(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	taken := filepath.Join(c.Path(dom0.StateDir), dom0.ClaimedFile)
	if err := os.MkdirAll(filepath.Join(taken, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := startSession(t, c, dom0.Session{Action: "upgrade"}); err == nil || !strings.Contains(err.Error(), "removing the last delivery's session.claimed.json: remove "+taken) {
		t.Errorf("a session with a directory at %s: %v, want refused naming it", taken, err)
	}
	if err := os.RemoveAll(taken); err != nil {
		t.Fatal(err)
	}
	s, err := startSession(t, c, dom0.Session{Action: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(taken, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := dom0.ClaimSession(c, s.ID, time.Now()); err == nil || errors.Is(err, dom0.ErrNoSession) || !strings.Contains(err.Error(), "claiming the session: rename ") {
		t.Errorf("ClaimSession with a directory at %s: %v, want the rename's error", taken, err)
	}
}
