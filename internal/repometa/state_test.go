package repometa

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEvaluateAndCommit runs whole batches against real signed snapshots,
// one after the other on the same state, as successive updates would.
func TestEvaluateAndCommit(t *testing.T) {
	pub := newPublisher(t, nil)
	s0 := buildSnapshot(t, day0.Add(-24*time.Hour), "foo-1.1-1.noarch")
	s1 := buildSnapshot(t, day0, "foo-1.1-1.noarch", "bar-2.0-1.x86_64")
	s2 := buildSnapshot(t, day0.Add(24*time.Hour), "foo-1.2-1.noarch", "bar-2.0-1.x86_64")
	root := t.TempDir()
	statePath := filepath.Join(root, StatePath)
	installed := []NEVRA{nevra(t, "foo-1.0-1.noarch"), nevra(t, "bar-2.0-1.x86_64")}
	run := func(clock time.Time, snap snapshot, published time.Time, received ...string) (*FreshnessState, *Verdict) {
		s := loadState(t, root, clock)
		return s, s.Evaluate(Batch{
			Repos:     []RepoFiles{snap.signedBy(t, "updates", pub, pub.pinned, published), {ID: "thirdparty"}},
			Received:  snap.received(t, received...),
			Installed: installed,
			Request:   Request{Action: "upgrade"},
		})
	}
	steps := []struct {
		name      string
		clock     time.Time
		snap      snapshot
		published time.Time
		received  []string
		want      []string
		status    Status
		revision  time.Time // in the state file afterwards
	}{
		{"first update", day0.Add(time.Hour), s1, day0, []string{"foo-1.1-1.noarch"},
			[]string{"warning not-verifiable ", "notice first-use "}, StatusFresh, day0},
		{"M3: older snapshot", day0.Add(time.Hour), s0, day0.Add(-24 * time.Hour), []string{"foo-1.1-1.noarch"},
			[]string{"warning not-verifiable ", "rejected rollback "}, StatusRejected, day0},
		{"same snapshot again", day0.Add(2 * time.Hour), s1, day0, []string{"foo-1.1-1.noarch"},
			[]string{"warning not-verifiable "}, StatusFresh, day0},
		// Dated a day after the floor, and 400 days after the clock: said.
		{"newer snapshot, clock set back", day0.Add(-400 * 24 * time.Hour), s2, day0.Add(24 * time.Hour), []string{"foo-1.2-1.noarch"},
			[]string{"warning not-verifiable ", "notice future-dated "}, StatusFresh, day0.Add(24 * time.Hour)},
		{"M1: newer snapshot, update withheld", day0.Add(48 * time.Hour), s2, day0.Add(24 * time.Hour), nil,
			[]string{"warning not-verifiable ", "rejected withheld foo-1.2-1.noarch"}, StatusFresh, day0.Add(24 * time.Hour)},
		{"M9: same snapshot three weeks on", day0.Add(21 * 24 * time.Hour), s2, day0.Add(24 * time.Hour), []string{"foo-1.2-1.noarch"},
			[]string{"warning not-verifiable ", "warning stale "}, StatusStale, day0.Add(24 * time.Hour)},
	}
	for _, step := range steps {
		before, _ := os.ReadFile(statePath)
		s, v := run(step.clock, step.snap, step.published, step.received...)
		if got := kinds(v.Findings); !slices.Equal(got, step.want) {
			t.Fatalf("%s: findings %q, want %q\n%v", step.name, got, step.want, v.Findings)
		}
		if v.Repos[0].Repo != "thirdparty" || v.Repos[0].Status != StatusNotVerifiable ||
			v.Repos[1].Repo != "updates" || v.Repos[1].Status != step.status || v.Repos[1].Key != pub.pinned.Fingerprint {
			t.Fatalf("%s: repo summaries %+v", step.name, v.Repos)
		}
		// Three weeks after day 0, of metadata from day 1.
		if step.status == StatusStale && v.Repos[1].AgeSeconds != 20*24*3600 {
			t.Fatalf("%s: age %d s, want 20 days", step.name, v.Repos[1].AgeSeconds)
		}
		for _, f := range v.Findings {
			t.Logf("%s: %s", step.name, f)
		}
		err := s.Commit(v)
		if v.Accepted() != (err == nil) {
			t.Fatalf("%s: accepted %v, Commit: %v", step.name, v.Accepted(), err)
		}
		after, _ := os.ReadFile(statePath)
		if !v.Accepted() && !bytes.Equal(before, after) {
			t.Fatalf("%s: a rejected batch changed the state file", step.name)
		}
		if st, err := readState(statePath); err != nil || st.Repos["updates"].Revision != uint64(step.revision.Unix()) {
			t.Fatalf("%s: state %+v, %v", step.name, st, err)
		}
	}
}

func TestCommitOnlyMovesForward(t *testing.T) {
	root := t.TempDir()
	clock := day0.Add(-1000 * time.Hour) // behind everything: must never be saved
	a, b := loadState(t, root, clock), loadState(t, root, clock)
	if err := a.Commit(&Verdict{verified: []*VerifiedRepo{verified(t, "updates", day0.Add(24*time.Hour), 200)}}); err != nil {
		t.Fatal(err)
	}
	// b was loaded before a committed and holds older metadata.
	if err := b.Commit(&Verdict{verified: []*VerifiedRepo{verified(t, "updates", day0, 100), verified(t, "other", day0, 7)}}); err != nil {
		t.Fatal(err)
	}
	st, err := readState(filepath.Join(root, StatePath))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Repos["updates"]; got.Revision != 200 || !got.Timestamp.Equal(day0.Add(24*time.Hour)) {
		t.Errorf("updates lowered to %+v", got)
	}
	if st.Repos["other"].Revision != 7 || !st.TimeFloor.Equal(day0.Add(24*time.Hour)) {
		t.Errorf("state %+v", st)
	}
	rejected := &Verdict{Findings: []Finding{{Severity: Reject}}, verified: []*VerifiedRepo{verified(t, "updates", day0.Add(48*time.Hour), 300)}}
	if err := a.Commit(rejected); err == nil {
		t.Error("committed a rejected batch")
	}
}

func TestLoad(t *testing.T) {
	for _, c := range []struct {
		name, content string
		ok            bool
	}{
		{"valid", `{"time_floor":"2025-03-01T00:00:00Z","repos":{"updates":{"revision":1,"timestamp":"2025-03-01T00:00:00Z","key_fingerprint":"AB"}}}`, true},
		{"truncated", `{"time_floor":"2025-03-01T00:00:00Z","repos":{"upd`, false},
		{"unknown field", `{"time_floor":"2025-03-01T00:00:00Z","repos":{},"extra":1}`, false},
		{"bad repo id", `{"time_floor":"2025-03-01T00:00:00Z","repos":{"../x":{}}}`, false},
		{"no repositories yet", `{"time_floor":"2025-03-01T00:00:00Z","repos":{}}`, true},
		// Never written by Commit: read as empty, each would drop rollback
		// protection without a word (and a null map crashed the commit).
		{"repos null", `{"time_floor":"2025-03-01T00:00:00Z","repos":null}`, false},
		{"null", `null`, false},
		{"empty object", `{}`, false},
		{"no floor", `{"repos":{}}`, false},
		{"two objects", `{"time_floor":"2025-03-01T00:00:00Z","repos":{}}{}`, false},
		{"a repository null", `{"time_floor":"2025-03-01T00:00:00Z","repos":{"updates":null}}`, false},
		{"a repository empty", `{"time_floor":"2025-03-01T00:00:00Z","repos":{"updates":{}}}`, false},
		{"a repository without its key", `{"time_floor":"2025-03-01T00:00:00Z","repos":{"updates":{"revision":1,"timestamp":"2025-03-01T00:00:00Z"}}}`, false},
		{"a repository without its timestamp", `{"time_floor":"2025-03-01T00:00:00Z","repos":{"updates":{"revision":1,"key_fingerprint":"AB"}}}`, false},
	} {
		root := t.TempDir()
		path := filepath.Join(root, StatePath)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(root, buildTime, day0); (err == nil) != c.ok {
			t.Errorf("%s: Load: %v", c.name, err)
		}
	}
	s, err := Load(t.TempDir(), buildTime, day0)
	if err != nil || len(s.saved.Repos) != 0 || !s.TimeFloor(nil).Equal(day0) {
		t.Errorf("first run: %+v, %v", s, err)
	}
}

// A state that is not there is a first run only when nothing is at its
// path: a link to a file that is missing (the state moved to a disk not
// mounted) would otherwise reset rollback protection without a word, and
// a FIFO would hang the reader (and a huge file fill its memory).
func TestLoadRefusesWhatIsNoState(t *testing.T) {
	for name, put := range map[string]func(path string) error{
		"dangling link": func(path string) error { return os.Symlink("/nonexistent/freshness.json", path) },
		"FIFO":          func(path string) error { return syscall.Mkfifo(path, 0o600) },
		"over 16 MiB":   func(path string) error { return os.WriteFile(path, make([]byte, 16<<20+1), 0o600) },
	} {
		root := t.TempDir()
		path := filepath.Join(root, StatePath)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := put(path); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(root, buildTime, day0); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Load: %v, want an error naming %s", name, err, path)
		}
	}
}

// TestCommitSurvivesKill kills a process that commits ever newer revisions
// at random moments (threats F1, F4): the state must always load, and never
// go back.
func TestCommitSurvivesKill(t *testing.T) {
	if root := os.Getenv("REPOMETA_COMMIT_LOOP_ROOT"); root != "" {
		commitLoop(t, root)
		return
	}
	root := t.TempDir()
	var last uint64
	for i := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCommitSurvivesKill$")
		cmd.Env = append(os.Environ(), "REPOMETA_COMMIT_LOOP_ROOT="+root)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Stopped, by its pid, also when the test fails before the kill below
		// (Kill and Wait of a process already waited for do nothing).
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		// Killed once it has committed again, a little later each time, so
		// the kills land at different points of a commit; a fixed delay
		// from the start ran out before the first commit on a loaded machine.
		waitForCommitAfter(t, root, last)
		time.Sleep(time.Duration(i*3) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		st, err := readState(filepath.Join(root, StatePath))
		if err != nil {
			t.Fatalf("after kill %d: %v", i, err)
		}
		if got := st.Repos["updates"].Revision; got < last {
			t.Fatalf("after kill %d: revision went back from %d to %d", i, last, got)
		} else {
			last = got
		}
	}
}

// waitForCommitAfter waits until the state under root holds a revision
// newer than last.
func waitForCommitAfter(t *testing.T, root string, last uint64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		st, err := readState(filepath.Join(root, StatePath))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if err == nil && st.Repos["updates"].Revision > last {
			return
		}
	}
	t.Fatalf("the child committed nothing after revision %d in 20 s", last)
}

// commitLoop is the child of TestCommitSurvivesKill; it gives up after a
// while should its parent be gone.
func commitLoop(t *testing.T, root string) {
	deadline := time.Now().Add(10 * time.Second)
	for rev := uint64(1); time.Now().Before(deadline); rev++ {
		s := loadState(t, root, day0)
		published := day0.Add(time.Duration(rev) * time.Second)
		if err := s.Commit(&Verdict{verified: []*VerifiedRepo{verified(t, "updates", published, rev)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEvaluateWrongKey: M7 at the level of a whole batch. The packages are
// not also reported as extraneous.
func TestEvaluateWrongKey(t *testing.T) {
	pub, other := newPublisher(t, nil), newPublisher(t, nil)
	snap := buildSnapshot(t, day0, "foo-1.1-1.noarch")
	s := loadState(t, t.TempDir(), day0)
	v := s.Evaluate(Batch{
		Repos:     []RepoFiles{snap.signedBy(t, "updates", other, pub.pinned, day0)},
		Received:  snap.received(t, "foo-1.1-1.noarch"),
		Installed: []NEVRA{nevra(t, "foo-1.0-1.noarch")},
		Request:   Request{Action: "upgrade"},
	})
	if got := kinds(v.Findings); !slices.Equal(got, []string{"rejected wrong-key "}) || v.Accepted() ||
		len(v.Repos) != 1 || v.Repos[0].Status != StatusRejected {
		t.Fatalf("findings %q, repos %+v", got, v.Repos)
	}
	if err := s.Commit(v); err == nil {
		t.Fatal("committed a batch with metadata signed by the wrong key")
	}
	if _, err := os.Stat(s.path); !os.IsNotExist(err) {
		t.Fatalf("state file written: %v", err)
	}
}

// Ages read as people say them, in the stale finding and the front end alike.
func TestHumanAge(t *testing.T) {
	for seconds, want := range map[int64]string{
		0: "0 min", 89: "1 min", 2700: "45 min", 3600: "1 h", 5400: "1.5 h", 47 * 3600: "47 h",
		48 * 3600: "2 days", 302400: "3.5 days", 10 * 86400: "10 days",
	} {
		if got := HumanAge(time.Duration(seconds) * time.Second); got != want {
			t.Errorf("HumanAge(%d s) = %q, want %q", seconds, got, want)
		}
	}
}

// The bound is the size of the file, not of its JSON: a valid state of
// exactly 16 MiB (padded with white space) loads, one byte more is refused
// before it is parsed, naming the file and the bound (docs/operations.md
// names the state-file errors).
func TestLoadBoundsTheStateFile(t *testing.T) {
	valid := `{"time_floor":"2025-03-01T00:00:00Z","repos":{"updates":{"revision":1,"timestamp":"2025-03-01T00:00:00Z","key_fingerprint":"AB"}}}`
	for size, refused := range map[int]bool{16 << 20: false, 16<<20 + 1: true} {
		root := t.TempDir()
		path := filepath.Join(root, StatePath)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(valid+strings.Repeat(" ", size-len(valid))), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(root, buildTime, day0)
		if refused && (err == nil || !strings.Contains(err.Error(), path+": larger than 16777216 bytes")) || !refused && err != nil {
			t.Errorf("a valid state of %d bytes: Load: %v; want refused: %v", size, err, refused)
		}
	}
}
