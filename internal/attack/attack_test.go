package attack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"pedos.dev/updates/internal/lab"
	"pedos.dev/updates/internal/testbin"
)

// The suite's rows run as tests in one lab per group, shared by the tests
// of that group and stopped when the package's tests end. PEDOS_LONG=1
// runs the long forms (F1 100 kills, L1 200 updates).

var (
	labsMu  sync.Mutex
	labs    = map[string]*Env{}
	labsDir string
)

func TestMain(m *testing.M) {
	code := testbin.Main(m)
	if !stopLabs() {
		code = 1
	}
	os.Exit(code)
}

// stopLabs takes every group's lab down and removes their files; it says
// whether all went down.
func stopLabs() bool {
	labsMu.Lock()
	defer labsMu.Unlock()
	ok := true
	for group, e := range labs {
		if err := e.Lab.Down(); err != nil {
			fmt.Fprintf(os.Stderr, "lab of group %s: down: %v\n", group, err)
			ok = false
		}
		delete(labs, group)
	}
	if labsDir != "" {
		os.RemoveAll(labsDir)
	}
	return ok
}

// groupLab returns the running lab of a group, bringing it up on first use.
func groupLab(t *testing.T, group string) *Env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the lab needs root (namespaces, mounts)")
	}
	labsMu.Lock()
	defer labsMu.Unlock()
	if e, ok := labs[group]; ok {
		return e
	}
	for _, p := range LabPrograms {
		testbin.Path(t, p)
	}
	if labsDir == "" {
		d, err := os.MkdirTemp("", "pedos-attack-")
		if err != nil {
			t.Fatal(err)
		}
		labsDir = d
	}
	form := Short
	if os.Getenv("PEDOS_LONG") != "" {
		form = Long
	}
	dir := filepath.Join(labsDir, group)
	// Stopped by TestMain, or before, should the binary end first.
	testbin.StopOnAbort(func() { _ = lab.Down(dir) })
	e, err := StartLab(context.Background(), dir, filepath.Dir(testbin.Path(t, "pedos-lab")), form)
	if err != nil {
		t.Fatalf("group %s: %v", group, err)
	}
	labs[group] = e
	return e
}

// runRow runs one row in its group's lab: a FAIL fails the test with the
// row's reason, a SKIP skips it.
func runRow(t *testing.T, id string) {
	t.Helper()
	r, ok := lookup(id)
	if !ok {
		t.Fatalf("no row %s", id)
	}
	// A panic ends the test binary before TestMain could stop the labs, whose
	// processes run in sessions of their own and would outlive it.
	defer func() {
		if p := recover(); p != nil {
			stopLabs()
			panic(p)
		}
	}()
	res := groupLab(t, r.Group).RunRow(r)
	for _, n := range res.Notes {
		t.Log(n)
	}
	switch res.Outcome {
	case Fail:
		t.Errorf("%s (%s): %s", id, r.Attack, res.Reason)
	case Skip:
		t.Skipf("%s: %s", id, res.Reason)
	default:
		t.Logf("%s PASS in %.1f s: %s", id, res.Seconds, res.Reason)
	}
}

// runGroupRows runs every row of a group, each as a subtest.
func runGroupRows(t *testing.T, group string) {
	for _, r := range Rows() {
		if r.Group == group {
			t.Run(r.ID, func(t *testing.T) { runRow(t, r.ID) })
		}
	}
}

func TestStreamRows(t *testing.T)  { runGroupRows(t, "stream") }
func TestPackageRows(t *testing.T) { runGroupRows(t, "packages") }
func TestCallRows(t *testing.T)    { runGroupRows(t, "calls") }
func TestFaultRows(t *testing.T)   { runGroupRows(t, "faults") }
func TestLoadRows(t *testing.T)    { runGroupRows(t, "load") }

// Issue 7's tests: one per attack on the set of packages, each asserting
// the exact finding kinds, the exit code and that dom0 is unchanged, plus
// the honest path. They share the metadata lab; M9, which moves its lab's
// time floor 30 days ahead, has a lab of its own.

func TestHonestPathFresh(t *testing.T)        { runRow(t, "H1") }
func TestM1Freeze(t *testing.T)               { runRow(t, "M1") }
func TestM2Withholding(t *testing.T)          { runRow(t, "M2") }
func TestM3Rollback(t *testing.T)             { runRow(t, "M3") }
func TestM4Replay(t *testing.T)               { runRow(t, "M4") }
func TestM5MixAndMatch(t *testing.T)          { runRow(t, "M5") }
func TestM6Extraneous(t *testing.T)           { runRow(t, "M6") }
func TestM7UnpinnedMetadataKey(t *testing.T)  { runRow(t, "M7") }
func TestM8DowngradeThroughDeps(t *testing.T) { runRow(t, "M8") }
func TestM9ClockSetBack(t *testing.T)         { runRow(t, "M9") }

// lookup finds a row by id.
func lookup(id string) (Row, bool) {
	i := slices.IndexFunc(Rows(), func(r Row) bool { return r.ID == id })
	if i < 0 {
		return Row{}, false
	}
	return Rows()[i], true
}
