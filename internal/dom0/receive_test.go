package dom0

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
)

// One metadata key pinned for two repositories would let the metadata of
// one be passed off as the other's: refused, naming both.
func TestPinnedKeysOnePerRepository(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	keyDir := c.Path("/etc/pki/rpm-gpg")
	if err := os.MkdirAll(keyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	pin := func(repo string) {
		s, err := testrepo.NewSigner(testrepo.KeySpec{Name: repo})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(keyDir, repo)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path, err := s.WritePublicKey(dir)
		if err != nil {
			t.Fatal(err)
		}
		c.MetadataKeys[repo] = strings.TrimPrefix(path, c.Root)
	}
	pin("updates")
	pin("release")
	keys, err := c.PinnedKeys()
	if err != nil || len(keys) != 2 || keys["updates"].Fingerprint == keys["release"].Fingerprint {
		t.Fatalf("two repositories with keys of their own: %v, %v", keys, err)
	}
	c.MetadataKeys["testing"] = c.MetadataKeys["updates"]
	_, err = c.PinnedKeys()
	if err == nil || !strings.Contains(err.Error(), "both repositories testing and updates") {
		t.Errorf("the same key pinned twice: %v", err)
	}
}

// The unpacker's -v line for any name gives that name back; no other kind
// of line gives a name.
func FuzzReceivedName(f *testing.F) {
	f.Add("upd0001-1.0-1.noarch.rpm", []byte("qfile-dom0-unpacker: received \"a.rpm\" (12 bytes)\n"))
	f.Add("a \" (b\".rpm", []byte("qfile-dom0-unpacker: received \"a\\\" (\" (1 bytes)\n"))
	f.Add("\x00\n", []byte("qfile-dom0-unpacker: warning: no Landlock\n"))
	f.Fuzz(func(t *testing.T, name string, line []byte) {
		reported := fmt.Sprintf("qfile-dom0-unpacker: received %q (%d bytes)\n", name, len(line))
		if got, ok := receivedName([]byte(reported)); !ok || got != name {
			t.Errorf("%q: got %q, %v", reported, got, ok)
		}
		if got, ok := receivedName(line); ok && !strings.HasPrefix(string(line), "qfile-dom0-unpacker: received \"") {
			t.Errorf("%q: got %q from another kind of line", line, got)
		}
	})
}

// A package's refusal carries the verifier's class, so that scripts can
// tell a verifiers' disagreement (a security error) from the rest.
func TestPackageCheckKind(t *testing.T) {
	var p PackageCheck
	p.reject(fmt.Errorf("checking: %w", pkgtool.Agree(map[string]error{"f": errors.New("rpmkeys says no")}, "f")))
	if p.OK || p.Kind != "verifiers disagree" || !strings.Contains(p.Rejected, "rpmkeys says no") {
		t.Errorf("disagreement: %+v", p)
	}
	var q PackageCheck
	q.reject(errors.New("the file name does not match"))
	if q.Kind != "" || q.Rejected != "the file name does not match" {
		t.Errorf("plain error: %+v", q)
	}
}

// The result shows each repository's age against the time floor, as the freeze check judged
// it (so that a front end need not compute it from a clock that may have been set back), and
// its revision as a JSON string.
func TestReportCarriesTheAge(t *testing.T) {
	var res Result
	report(&res, &repometa.Verdict{Repos: []repometa.RepoSummary{{Repo: "updates", Status: repometa.StatusStale, Revision: 7, AgeSeconds: 30 * 24 * 3600}}})
	b, err := json.Marshal(res.Freshness)
	if want := `[{"repo":"updates","status":"stale","revision":"7","age_seconds":2592000}]`; err != nil || string(b) != want {
		t.Errorf("freshness %s (%v), want %s", b, err, want)
	}
}

// deliveryLimit takes 45 % of the free space of every file system a
// delivery is written to, so that a staging directory mounted apart (S13)
// cannot let a delivery fill the file system of the build (S8).
func TestDeliveryLimitCountsEveryFileSystem(t *testing.T) {
	free := map[string]int64{}
	var small, large string
	for _, size := range []string{"1m", "8m"} {
		dir := t.TempDir()
		testbin.Tmpfs(t, dir, "size="+size)
		var fs unix.Statfs_t
		if err := unix.Statfs(dir, &fs); err != nil {
			t.Fatal(err)
		}
		free[dir] = int64(fs.Bavail * uint64(fs.Frsize))
		small, large = cmp.Or(small, dir), dir
	}
	for _, dirs := range [][]string{{large, small}, {small, large}} {
		limit, by, err := deliveryLimit(1<<40, dirs...)
		if err != nil || by != small || limit != free[small]/100*45 {
			t.Errorf("%q: limit %d set by %q (%v), want %d set by %s", dirs, limit, by, err, free[small]/100*45, small)
		}
	}
	if limit, by, err := deliveryLimit(1000, large, small); limit != 1000 || by != "" || err != nil {
		t.Errorf("max_bytes under both: limit %d set by %q (%v), want 1000 set by max_bytes", limit, by, err)
	}
	if _, _, err := deliveryLimit(1000, filepath.Join(small, "missing")); err == nil || !strings.Contains(err.Error(), "free space for ") {
		t.Errorf("a missing directory: %v, want an error naming it", err)
	}
}

// A progress file that cannot be renamed into place (something else where
// progress.json belongs) leaves no temporary file behind (progress.go): the
// progress line is lost, StateDir is not littered.
func TestWriteProgressLeavesNoTemporaryFile(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	blocker := filepath.Join(c.Path(StateDir), ProgressFile, "x")
	if err := os.MkdirAll(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	writeProgress(c, Progress{Session: "s", Done: 1, Total: 2})
	if tmp, _ := filepath.Glob(filepath.Join(c.Path(StateDir), ProgressFile+".*")); len(tmp) != 0 {
		t.Errorf("temporary progress files left: %v", tmp)
	}
}

// A FIFO left at the progress file's temporary name does not hold the
// receive (an open of one for writing waits for a reader): progress is
// best effort, and is not written then.
func TestWriteProgressPastAFIFO(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	tmp := filepath.Join(c.Path(StateDir), ProgressFile+".tmp")
	if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(tmp, 0o600); err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{})
	go func() {
		writeProgress(c, Progress{Session: "s", Done: 1, Total: 2})
		close(written)
	}()
	select {
	case <-written:
	case <-time.After(time.Minute):
		t.Fatal("writeProgress waits on a FIFO at its temporary name")
	}
}

// A verified copy dom0 could not write for want of space (the disk full, or
// the quota of dom0's file system used up) is dom0's own fault: the delivery
// fails saying dom0's disk is full, with no verdict on the packages that
// would blame them (or the UpdateVM).
func TestFullDiskIsDom0sFault(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		full := &rpm.Error{Kind: rpm.KindIO, Reason: "writing canonical package", Err: &os.PathError{Op: "write", Path: "/x", Err: errno}}
		keysReady := make(chan struct{})
		close(keysReady)
		p := &packageChecks{queue: make(chan string), keysReady: keysReady, build: RepoBuild{Dir: "/var/lib/PedOS/.updates-x"},
			hinted: map[string]bool{"a-1-1.noarch.rpm": true, "b-1-1.noarch.rpm": true},
			results: map[string]packageResult{
				"a-1-1.noarch.rpm": {check: PackageCheck{File: "a-1-1.noarch.rpm", OK: true}},
				"b-1-1.noarch.rpm": {check: PackageCheck{File: "b-1-1.noarch.rpm"}, err: full},
			}}
		var res Result
		_, err := p.finish([]string{"a-1-1.noarch.rpm", "b-1-1.noarch.rpm"}, &res)
		if err == nil || !strings.HasPrefix(err.Error(), "dom0's disk is full: no space left in /var/lib/PedOS for the verified copies") || !errors.Is(err, errno) || len(res.Packages) != 0 {
			t.Errorf("%v: finish: %v, %d package verdicts; want dom0's disk named full and no verdicts", errno, err, len(res.Packages))
		}
	}
}

// A tool's failure on a full file system (createrepo_c's "gzclose(): file
// operation error") says the disk is full; on one with room, how much room
// (the tool removed what it wrote before it exited).
func TestOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	failed := errors.New("createrepo_c: exit 1: gzclose(): file operation error")
	if err := onFullDisk(failed, dir); !errors.Is(err, failed) || !strings.Contains(err.Error(), "MiB free: if the tool ran out of space, free more there)") {
		t.Errorf("with room: %v", err)
	}
	testbin.Tmpfs(t, dir, "size=512k")
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 1<<20), 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the file system: %v", err)
	}
	if err := onFullDisk(failed, dir); !errors.Is(err, failed) || !strings.Contains(err.Error(), "(the file system of "+dir+" has 0 bytes free: dom0's disk is full") {
		t.Errorf("on a full disk: %v", err)
	}
	if err := onFullDisk(nil, dir); err != nil {
		t.Errorf("no failure: %v", err)
	}
	// Room that cannot be measured is not said at all, least of all as 0.
	if err := onFullDisk(failed, filepath.Join(dir, "missing")); err != failed {
		t.Errorf("room unknown: %v", err)
	}
}
