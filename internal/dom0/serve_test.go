package dom0_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/testbin"
)

// serveRefused calls Serve from the UpdateVM for the session id and
// requires a refusal (ErrRefused) saying want, before a byte is read, with
// the live session left unclaimed and no result written (C1, C2, F3).
func serveRefused(t *testing.T, c dom0.Config, session dom0.Session, id, want string) {
	t.Helper()
	stdin := strings.NewReader("a stream")
	r := &dom0.Receiver{Config: c, Unpacker: filepath.Join(t.TempDir(), "no-unpacker"), Log: &strings.Builder{}, Now: time.Now}
	err := r.Serve(t.Context(), c.UpdateVM, id, stdin, &strings.Builder{})
	if !errors.Is(err, dom0.ErrRefused) || !strings.Contains(err.Error(), want) {
		t.Errorf("Serve: %v, want refused saying %q", err, want)
	}
	if stdin.Len() != len("a stream") {
		t.Error("the refused call's input was read")
	}
	if _, err := os.Stat(filepath.Join(c.Path(dom0.StateDir), dom0.SessionFile)); err != nil {
		t.Errorf("the session is gone after a refused call: %v", err)
	}
	if _, err := frontend.ReadResult(c, session.ID); !errors.Is(err, frontend.ErrNoResult) {
		t.Errorf("a refused call wrote a result: %v", err)
	}
}

// assertNothingPublished fails t if a refused delivery left a cached
// repository in dom0 (F4: a refusal publishes nothing).
func assertNothingPublished(t *testing.T, c dom0.Config) {
	t.Helper()
	if _, err := os.Stat(c.Path(dom0.CachedRepoDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cached repository was published: %v", err)
	}
}

// C2: the UpdateVM itself gets nothing in with a session id that is not
// the live session's; Serve relies on ClaimSession's verdict.
func TestServeRefusesAWrongSession(t *testing.T) {
	c, session := upgradeSession(t)
	serveRefused(t, c, session, strings.Repeat("0", dom0.SessionIDLength), "the session id does not match")
}

// F3: one delivery at a time. While another holds the receive lock, a call
// is refused as such, without claiming the session.
func TestServeRefusesWhileAnotherDeliveryRuns(t *testing.T) {
	c, session := upgradeSession(t)
	unlock, err := dom0.LockFile(filepath.Join(c.Path(dom0.StateDir), dom0.ReceiveLockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	serveRefused(t, c, session, session.ID, "another delivery is being processed")
}

// A receive lock that cannot be taken at all refuses the call too: no
// delivery runs unserialised (F3).
func TestServeRefusesWithoutTheLock(t *testing.T) {
	c, session := upgradeSession(t)
	if err := os.Mkdir(filepath.Join(c.Path(dom0.StateDir), dom0.ReceiveLockFile), 0o700); err != nil {
		t.Fatal(err)
	}
	serveRefused(t, c, session, session.ID, "no session can be claimed")
}

// M3: a freshness state that cannot be read refuses the delivery; read as
// empty it would drop rollback protection. The state and the cached
// repository stay as they were (threats.md: "freshness state unchanged").
func TestCorruptFreshnessStateRefusesTheDelivery(t *testing.T) {
	c, batch := benchDom0(t, nil)
	state := c.Path(repometa.StatePath)
	if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	corrupt := []byte(`{"time_floor": "2024-01-01T00:00:00Z"}`)
	if err := os.WriteFile(state, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err == nil || res.Accepted || !strings.Contains(res.Error, "freshness state") {
		t.Fatalf("accepted %v (%v): %s; want refused for the corrupt freshness state; log:\n%s", res.Accepted, err, res.Error, log)
	}
	if b, err := os.ReadFile(state); err != nil || string(b) != string(corrupt) {
		t.Errorf("the freshness state now holds %q (%v)", b, err)
	}
	assertNothingPublished(t, c)
}

// An unpacker_user that does not exist is the configuration's error, named as such, before
// any unpacker runs (qfile.md: the unpacker is, "when started as root, switched to an
// unprivileged user"; dom0 makes the staging directory that user's first).
func TestUnknownUnpackerUserRefusesTheDelivery(t *testing.T) {
	c, batch := benchDom0(t, nil)
	c.UnpackerUser = "pedos-no-such-user"
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err == nil || res.Accepted || !strings.Contains(res.Error, "unpacker_user") {
		t.Errorf("accepted %v (%v): %s; want refused naming unpacker_user; log:\n%s", res.Accepted, err, res.Error, log)
	}
}

// A delivery, accepted or refused, leaves no staged bytes, no scratch
// files and no unpublished build behind: staging holds up to max_bytes
// twice over (S8, S13), and what a delivery leaves is removed (F1).
func TestDeliveryLeavesNothingBehind(t *testing.T) {
	c, batch := benchDom0(t, nil)
	for _, tc := range []struct {
		name, script string
		accept       bool
	}{
		{"accepted", "", true},
		// Refused after the packages were verified into the build.
		{"refused", "echo x >\"$2\"/notes.txt\n", false},
	} {
		res, log, err := deliverStaged(t, c, batch.Files(), tc.script)
		if res.Accepted != tc.accept {
			t.Fatalf("%s: accepted %v (%v): %s; log:\n%s", tc.name, res.Accepted, err, res.Error, log)
		}
		if entries, err := os.ReadDir(c.Path(dom0.StagingDir)); err != nil || len(entries) != 0 {
			t.Errorf("%s: the staging directory holds %v (%v)", tc.name, entries, err)
		}
		if _, err := os.Stat(c.Path(dom0.ScratchDir)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the scratch directory is still there (%v)", tc.name, err)
		}
		builds, _ := filepath.Glob(filepath.Join(filepath.Dir(c.Path(dom0.CachedRepoDir)), ".updates-*"))
		if len(builds) != 0 {
			t.Errorf("%s: builds left beside the cached repository: %v", tc.name, builds)
		}
		// The private copies of the staged metadata are unlinked files.
		if copies, _ := filepath.Glob(filepath.Join(c.Path(dom0.StateDir), ".staged-*")); len(copies) != 0 {
			t.Errorf("%s: copies of staged files left in the state directory: %v", tc.name, copies)
		}
	}
}

// F1, F4: a build a crashed run left that cannot be removed stops the
// delivery before anything is verified into the cached repository's
// parent; the cached repository stays as it was.
func TestLeftoverBuildThatCannotBeRemoved(t *testing.T) {
	c, batch := benchDom0(t, nil)
	stuck := filepath.Join(filepath.Dir(c.Path(dom0.CachedRepoDir)), ".updates-crashed", "repodata")
	if err := os.MkdirAll(filepath.Dir(stuck), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stuck, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testbin.Immutable(t, stuck)
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err == nil || res.Accepted || !strings.Contains(res.Error, ".updates-crashed") {
		t.Errorf("accepted %v (%v): %s; want refused naming the leftover build; log:\n%s", res.Accepted, err, res.Error, log)
	}
	assertNothingPublished(t, c)
}

// A staging directory the (compromised) unpacker removed is the refusal's cause, named as
// such (threats.md: "a clear error naming the cause"), not a delivery of nothing.
func TestStagingDirectoryRemovedByTheUnpacker(t *testing.T) {
	c, batch := benchDom0(t, nil)
	res, log, err := deliverStaged(t, c, batch.Files(), "rm -r \"$2\"\n")
	if err == nil || res.Accepted || !strings.Contains(res.Error, res.Session+": no such file or directory") {
		t.Errorf("accepted %v (%v): %s; want refused for the missing staging directory; log:\n%s", res.Accepted, err, res.Error, log)
	}
}

// The progress the person at pedos-dom0-update sees (progress.go): once a delivery is
// done, progress.json counts every package verified of every package received, for its
// session, replaced whole (no temporary file left).
func TestProgressCountsTheDelivery(t *testing.T) {
	c, batch := benchDom0(t, nil)
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err != nil || !res.Accepted {
		t.Fatalf("refused (%v): %s; log:\n%s", err, res.Error, log)
	}
	b, err := os.ReadFile(filepath.Join(c.Path(dom0.StateDir), dom0.ProgressFile))
	if err != nil {
		t.Fatal(err)
	}
	var p dom0.Progress
	if err := json.Unmarshal(b, &p); err != nil || p != (dom0.Progress{Session: res.Session, Done: 3, Total: 3}) {
		t.Errorf("progress %s (%v), want 3 of 3 for session %s", b, err, res.Session)
	}
	if tmp, _ := filepath.Glob(filepath.Join(c.Path(dom0.StateDir), dom0.ProgressFile+".*")); len(tmp) != 0 {
		t.Errorf("temporary progress files left: %v", tmp)
	}
}

// A service killed between writing the progress and renaming it leaves its
// one temporary file; the next delivery's first write replaces it
// (progress.go), so killed services do not pile files up in StateDir.
func TestProgressReplacesAKilledServicesFile(t *testing.T) {
	c, batch := benchDom0(t, nil)
	stale := filepath.Join(c.Path(dom0.StateDir), dom0.ProgressFile+".tmp")
	if err := os.MkdirAll(filepath.Dir(stale), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte(`{"session":"killed","done":1,"total":2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err != nil || !res.Accepted {
		t.Fatalf("refused (%v): %s; log:\n%s", err, res.Error, log)
	}
	if tmp, _ := filepath.Glob(filepath.Join(c.Path(dom0.StateDir), dom0.ProgressFile+".*")); len(tmp) != 0 {
		t.Errorf("temporary progress files left: %v", tmp)
	}
}
