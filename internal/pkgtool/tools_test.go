package pkgtool_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/testrepo"
)

// newTools is a Tools removed when the test ends.
func newTools(t *testing.T) *pkgtool.Tools {
	t.Helper()
	tools, err := pkgtool.NewTools(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tools.Close() })
	return tools
}

// InstalledPackages is what the withholding and downgrade checks judge
// against (verify.md §2, M2, M8): every installed package with its epoch,
// version, release and arch, and none of the gpg-pubkey entries that
// imported keys make in the same database.
func TestInstalledPackagesListsTheDatabase(t *testing.T) {
	need(t, "rpm", "rpmdb", "rpmkeys")
	signer, _, _ := setup(t)
	tools := newTools(t)
	ctx := context.Background()
	root := t.TempDir()
	if err := tools.Run(ctx, "rpmdb --initdb", nil, io.Discard, "rpmdb", "--root", root, "--initdb"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []testrepo.Package{
		{Name: "hello", Version: "2.0", Release: "1"},
		{Name: "kernel", Epoch: 3, Version: "6.1", Release: "2.fc41", Arch: "x86_64"},
	} {
		file, err := testrepo.WriteFile(t.TempDir(), p)
		if err != nil {
			t.Fatal(err)
		}
		if err := tools.Run(ctx, "rpm -i --justdb", nil, io.Discard, "rpm", "--root", root, "-i", "--justdb", "--nodeps", "--nosignature", "--nodigest", "--ignorearch", file); err != nil {
			t.Fatal(err)
		}
	}
	key, err := signer.WritePublicKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := tools.Run(ctx, "rpmkeys --import", nil, io.Discard, "rpmkeys", "--root", root, "--import", key); err != nil {
		t.Fatal(err)
	}
	pkgs, err := tools.InstalledPackages(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.String())
	}
	slices.Sort(got)
	if want := []string{"hello-2.0-1.noarch", "kernel-3:6.1-2.fc41.x86_64"}; !slices.Equal(got, want) {
		t.Errorf("installed packages %q, want %q", got, want)
	}
}

// rpm failing to list the database fails the check: an empty list would
// pass the withholding and downgrade checks for want of anything to check
// (M2, M8).
func TestInstalledPackagesWhenRPMFails(t *testing.T) {
	tools := newTools(t)
	root := rootWithRPMDB(t)
	standIn(t, "rpm", "echo 'error: cannot open the database' >&2\nexit 1\n")
	if pkgs, err := tools.InstalledPackages(context.Background(), root); err == nil || !strings.Contains(err.Error(), "exit 1: error: cannot open the database") {
		t.Errorf("got %v, %v; want rpm's failure", pkgs, err)
	}
}

// A tool that says nothing (killed, most often) is named with its status
// alone, not with an empty reason after a colon.
func TestSilentFailureHasNoEmptyReason(t *testing.T) {
	tools := newTools(t)
	root := rootWithRPMDB(t)
	standIn(t, "rpm", "echo >&2\nexit 9\n")
	if _, err := tools.InstalledPackages(context.Background(), root); err == nil || !strings.HasSuffix(err.Error(), ": exit 9") {
		t.Errorf("got %v; want it to end with the exit status", err)
	}
}

// A line of rpm's listing whose version rpm itself would not allow fails
// the listing, rather than being judged as some other version (M8).
func TestInstalledPackagesRefusesABadLine(t *testing.T) {
	tools := newTools(t)
	root := rootWithRPMDB(t)
	standIn(t, "rpm", `printf 'hello\t0\t1.0\t1\tnoarch\nbad\t0\t1/0\t1\tnoarch\n'`)
	if pkgs, err := tools.InstalledPackages(context.Background(), root); err == nil || !strings.Contains(err.Error(), ": bad: ") {
		t.Errorf("got %v, %v; want an error naming the package bad", pkgs, err)
	}
}

// RequireRPMDB takes a database in any of rpm's formats, and only a
// regular file: a mistyped root must not look like a system with nothing
// installed (M2).
func TestRequireRPMDBFormats(t *testing.T) {
	for _, c := range []struct {
		name string
		dir  bool
		ok   bool
	}{
		{"rpmdb.sqlite", false, true}, {"Packages", false, true}, {"Packages.db", false, true},
		{"rpmdb.sqlite", true, false}, {"other.db", false, false},
	} {
		root := t.TempDir()
		db := filepath.Join(root, "var/lib/rpm")
		if err := os.MkdirAll(db, 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if c.dir {
			err = os.Mkdir(filepath.Join(db, c.name), 0o755)
		} else {
			err = os.WriteFile(filepath.Join(db, c.name), nil, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := pkgtool.RequireRPMDB(root); (err == nil) != c.ok {
			t.Errorf("%s (directory: %t): %v, want ok=%t", c.name, c.dir, err, c.ok)
		}
	}
}

// Run says which tool failed, with its exit status and the first line of
// its stderr.
func TestRunReportsAFailure(t *testing.T) {
	tools := newTools(t)
	err := tools.Run(context.Background(), "the stand-in", nil, io.Discard, "sh", "-c", "echo first >&2; echo second >&2; exit 3")
	if err == nil || err.Error() != "the stand-in: exit 3: first" {
		t.Errorf("got %v, want \"the stand-in: exit 3: first\"", err)
	}
	// A tool that cannot run is named as well (the key import's warning
	// named no key file; review), and a cancelled run stays one.
	err = tools.Run(context.Background(), "rpmkeys --import KEY", nil, io.Discard, "/nonexistent/rpmkeys")
	if err == nil || !strings.HasPrefix(err.Error(), "rpmkeys --import KEY: ") {
		t.Errorf("a tool that cannot run: %v, want it named", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tools.Run(ctx, "the stand-in", nil, io.Discard, "true"); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "the stand-in: ") {
		t.Errorf("a cancelled run: %v, want context.Canceled, named", err)
	}
	// A tool killed by a signal (the user's Ctrl-C reaches dnf too) exits
	// 128+N, as a shell says, not Go's -1.
	if code, err := tools.Exec(context.Background(), 0, "sh", []string{"-c", "kill -INT $$"}, nil, io.Discard, io.Discard); code != 130 || err != nil {
		t.Errorf("a tool killed by SIGINT: exit %d (%v), want 130", code, err)
	}
}

// rootWithRPMDB is a root directory with an (empty) rpm database file,
// which InstalledPackages requires before it runs rpm.
func rootWithRPMDB(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	db := filepath.Join(root, "var/lib/rpm")
	if err := os.MkdirAll(db, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(db, "rpmdb.sqlite"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// A tool killed at the session's deadline whose child still holds its output
// (a wrapper script's sleep) does not hold the receive past the deadline:
// the output is closed soon after, and the call returns.
func TestToolKilledWithAChildHoldingItsOutput(t *testing.T) {
	tools := newTools(t)
	pidFile := filepath.Join(t.TempDir(), "child")
	standIn(t, "rpmkeys", "sleep 120 &\necho $! >"+pidFile+"\nwait\n")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var stdout strings.Builder
	returned := make(chan struct{})
	go func() {
		tools.Run(ctx, "rpmkeys", nil, &stdout, "rpmkeys")
		close(returned)
	}()
	var child int
	for child == 0 {
		data, _ := os.ReadFile(pidFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		time.Sleep(10 * time.Millisecond)
	}
	// The sleep is still running (the tool's child, orphaned by its kill):
	// held by a pidfd, so that the kill at the end reaches it and no other.
	fd, err := unix.PidfdOpen(child, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	defer unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	select {
	case <-returned:
	case <-time.After(time.Minute):
		t.Fatal("Run still waits for the output a killed tool's child holds")
	}
}

// The rpmkeys cross-check too: an rpmkeys killed at the session's deadline
// whose child holds its output does not hold the receive past it (the
// deadline ends the delivery, threats.md C7), and nothing it did not say is
// taken for an acceptance.
func TestCheckBatchKilledWithAChildHoldingItsOutput(t *testing.T) {
	checker, _, good, _ := goodAndUnsigned(t)
	pidFile := filepath.Join(t.TempDir(), "child")
	standIn(t, "rpmkeys", "sleep 120 &\necho $! >"+pidFile+"\nwait\n")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	verdicts := make(chan map[string]error, 1)
	go func() { verdicts <- checker.CheckBatch(ctx, []string{good}) }()
	var child int
	for child == 0 {
		data, _ := os.ReadFile(pidFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		time.Sleep(10 * time.Millisecond)
	}
	fd, err := unix.PidfdOpen(child, 0) // the kill at the end reaches it and no other
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	defer unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	select {
	case v := <-verdicts:
		if v[good] == nil {
			t.Error("a package rpmkeys was killed before judging is accepted")
		}
	case <-time.After(time.Minute):
		t.Fatal("CheckBatch still waits for the output a killed rpmkeys' child holds")
	}
}

// An rpmkeys that judged every file and exited 0, leaving a child that holds
// its output (a wrapper's), has given its verdicts: they count, rather than
// the run being one that "could not run" (and every file checked again
// alone, each waiting out the delay).
func TestCheckBatchAfterAToolLeftAChild(t *testing.T) {
	checker, dir, good, _ := goodAndUnsigned(t)
	other := filepath.Join(dir, "other-1-1.noarch.rpm")
	if data, err := os.ReadFile(good); err != nil || os.WriteFile(other, data, 0o644) != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "child")
	standIn(t, "rpmkeys", "while [ \"$1\" != -- ]; do shift; done\nshift\nfor f; do echo \"$f: digests signatures OK\"; done\n"+
		"sleep 120 &\necho $! >"+pidFile+"\nexit 0\n")
	verdicts := checker.CheckBatch(context.Background(), []string{good, other})
	data, err := os.ReadFile(pidFile)
	child, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || child == 0 {
		t.Fatalf("the stand-in's child: %q, %v", data, err)
	}
	if fd, err := unix.PidfdOpen(child, 0); err == nil { // the kill reaches it and no other
		unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		unix.Close(fd)
	}
	for _, f := range []string{good, other} {
		if verdicts[f] != nil {
			t.Errorf("%s: %v, want accepted", filepath.Base(f), verdicts[f])
		}
	}
}

// slowWriter stalls on its first write, as a terminal held with Ctrl-S does.
type slowWriter struct {
	strings.Builder
	stalled bool
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if !w.stalled {
		w.stalled = true
		time.Sleep(3 * time.Second)
	}
	return w.Builder.Write(p)
}

// Exec without a wait delay (dnf's, rpm's listings) delivers a tool's
// whole output to a reader that stalls past the tool's end (the output
// still in the pipe when the tool exits): none of it is cut off.
func TestStreamWaitsForASlowReader(t *testing.T) {
	tools := newTools(t)
	standIn(t, "rpm", "head -c 60000 /dev/zero | tr '\\0' x\nexit 100\n")
	var out slowWriter
	code, err := tools.Exec(context.Background(), 0, "rpm", nil, nil, &out, io.Discard)
	if code != 100 || err != nil || out.Len() != 60000 {
		t.Errorf("exit %d, %v, %d bytes of 60000", code, err, out.Len())
	}
}
