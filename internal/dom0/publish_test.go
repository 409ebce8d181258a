package dom0

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPublishReplacesWholeRepository(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	publish := func(files ...string) {
		t.Helper()
		b, err := NewRepoBuild(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(b.PackagesDir(), f), []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var warn strings.Builder
		if err := b.Publish(c, time.Time{}, &warn); err != nil || warn.Len() > 0 {
			t.Fatalf("%v %s", err, warn.String())
		}
	}
	list := func() []string {
		t.Helper()
		entries, err := os.ReadDir(filepath.Join(c.Path(CachedRepoDir), cachedRepoPackages))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	publish("a.rpm", "b.rpm")
	if got := list(); len(got) != 2 {
		t.Fatalf("first publication: %v", got)
	}
	publish("c.rpm")
	if got := list(); len(got) != 1 || got[0] != "c.rpm" {
		t.Fatalf("second publication: %v, want only c.rpm", got)
	}
	// Nothing of either build is left beside the repository.
	entries, _ := os.ReadDir(filepath.Dir(c.Path(CachedRepoDir)))
	if len(entries) != 1 {
		t.Errorf("leftovers beside the cached repository: %v", entries)
	}
}

// F4: a build abandoned by a crash is removed by the next run, and the
// published repository is untouched by it.
func TestCrashedBuildIsCleanedUp(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	crashed, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	next, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed.Dir); !os.IsNotExist(err) {
		t.Errorf("crashed build %s still there: %v", crashed.Dir, err)
	}
	if err := next.Publish(c, time.Time{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// An empty build, as --clean publishes, empties the repository.
	empty, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := empty.Publish(c, time.Time{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(c.Path(CachedRepoDir), cachedRepoPackages))
	if err != nil || len(entries) != 0 {
		t.Errorf("after an empty build: %v, %v", entries, err)
	}
}

// Once the new repository is in place, failing to remove the previous one
// is a warning, not an error: the publish happened. The next build removes
// what is left.
func TestPublishWarnsAfterTheSwap(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not installed")
	}
	c := DefaultConfig(t.TempDir())
	old, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	stuck := filepath.Join(old.PackagesDir(), "stuck.rpm")
	if err := os.WriteFile(stuck, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := old.Publish(c, time.Time{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	stuck = filepath.Join(c.Path(CachedRepoDir), cachedRepoPackages, "stuck.rpm")
	if out, err := exec.Command("chattr", "+i", stuck).CombinedOutput(); err != nil {
		t.Skipf("chattr +i: %v %s", err, out)
	}
	next, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	// After the swap, the previous repository is at the build's name.
	defer exec.Command("chattr", "-i", filepath.Join(next.PackagesDir(), "stuck.rpm")).Run()
	var warn strings.Builder
	if err := next.Publish(c, time.Time{}, &warn); err != nil {
		t.Fatalf("publish after the swap: %v", err)
	}
	if !strings.Contains(warn.String(), "the new cached repository is in place, but") {
		t.Errorf("no warning about the previous repository: %q", warn.String())
	}
	if _, err := os.Stat(filepath.Join(c.Path(CachedRepoDir), cachedRepoPackages, "stuck.rpm")); !os.IsNotExist(err) {
		t.Errorf("the previous repository is still current: %v", err)
	}
}

// A deadline that passes while the build is synced stops the publish: the
// front end has stopped waiting, and must not see a repository appear later.
func TestPublishAfterTheDeadline(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	b, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Publish(c, time.Now().Add(-time.Second), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "nothing was published") {
		t.Fatalf("publish after the deadline: %v", err)
	}
	if _, err := os.Stat(c.Path(CachedRepoDir)); !os.IsNotExist(err) {
		t.Errorf("the cached repository appeared after the deadline: %v", err)
	}
}
