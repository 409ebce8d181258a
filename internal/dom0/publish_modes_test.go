package dom0

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/testbin"
)

// The published repository is dnf's to read and root's alone to write: its directories are
// 0755, never group- or world-writable: a package file replaced there after the checks
// would be installed as verified (threats.md: every attack leaves the "cached repository
// ... unchanged").
func TestPublishedRepositoryModes(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	b, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(c, time.Time{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	cached := c.Path(CachedRepoDir)
	for _, dir := range []string{filepath.Dir(cached), cached, filepath.Join(cached, cachedRepoPackages)} {
		info, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o755 {
			t.Errorf("%s has mode %v, want 0755", dir, info.Mode().Perm())
		}
	}
}

// F4: a swap that fails is an error, and the cached repository stays as it was ("An error
// means the cached repository is unchanged"). The current repository is made immutable.
func TestPublishFailureLeavesTheRepository(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	first, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(first.PackagesDir(), "old.rpm"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := first.Publish(c, time.Time{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	cached := c.Path(CachedRepoDir)
	testbin.Immutable(t, cached)
	next, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(next.PackagesDir(), "new.rpm"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := next.Publish(c, time.Time{}, io.Discard); err == nil || !strings.Contains(err.Error(), "publishing the cached repository") {
		t.Errorf("publish over an immutable repository: %v, want an error", err)
	}
	if _, err := os.Stat(filepath.Join(cached, cachedRepoPackages, "old.rpm")); err != nil {
		t.Errorf("the cached repository changed: %v", err)
	}
}

// F1, F4: every build crashed runs left is removed, not only the first.
func TestEveryCrashedBuildIsRemoved(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	if err := os.MkdirAll(filepath.Dir(c.Path(CachedRepoDir)), 0o755); err != nil {
		t.Fatal(err)
	}
	var crashed []string
	for range 3 {
		dir, err := os.MkdirTemp(filepath.Dir(c.Path(CachedRepoDir)), buildPrefix)
		if err != nil {
			t.Fatal(err)
		}
		crashed = append(crashed, dir)
	}
	b, err := NewRepoBuild(c)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Discard()
	for _, dir := range crashed {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("crashed build %s still there: %v", dir, err)
		}
	}
}

// The result is the front end's answer (overview.md step 6): a file only root can write,
// whatever the mode of a state directory made by hand, or another user of dom0 could turn a
// refusal into "accepted".
func TestResultFileIsRootsAlone(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	if err := os.MkdirAll(c.Path(StateDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteResult(c, Result{Session: "s"}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(c.Path(StateDir), ResultFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("result file: %v, %v; want mode 0600", info, err)
	}
}
