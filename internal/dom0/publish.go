package dom0

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/atomicfile"
)

// dom0's cached repository and the repository directory dom0's dnf reads.
const (
	CachedRepoDir     = "/var/lib/PedOS/updates"
	CachedRepoConfDir = "/etc/yum.real.repos.d"
	// Package files inside the cached repository.
	cachedRepoPackages = "rpm"
	// Prefix of directories being built beside the cached repository, and of
	// the previous one while it is being removed. A crash leaves them behind
	// (F4); the next NewRepoBuild removes them.
	buildPrefix = ".updates-"
)

// RepoBuild is a new cached repository being assembled beside the current
// one; Publish makes it current in one step.
type RepoBuild struct {
	Dir string // the repository's top directory
}

// PackagesDir is where verified canonical packages go.
func (b RepoBuild) PackagesDir() string { return filepath.Join(b.Dir, cachedRepoPackages) }

// NewRepoBuild starts a new cached repository, removing what earlier crashed
// runs left behind.
func NewRepoBuild(c Config) (RepoBuild, error) {
	parent := filepath.Dir(c.Path(CachedRepoDir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return RepoBuild{}, err
	}
	if err := removeEntries(parent, buildPrefix); err != nil {
		return RepoBuild{}, err
	}
	dir, err := os.MkdirTemp(parent, buildPrefix)
	if err != nil {
		return RepoBuild{}, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return RepoBuild{}, err
	}
	b := RepoBuild{Dir: dir}
	return b, os.Mkdir(b.PackagesDir(), 0o755)
}

// Discard removes an unpublished build.
func (b RepoBuild) Discard() error { return os.RemoveAll(b.Dir) }

// Publish replaces the cached repository with b atomically: dnf and a crash
// at any point see the old repository or the new one, complete (F4). An
// error means the cached repository is unchanged. A deadline (zero: none)
// is checked before the build is synced and again just before the swap:
// the syncfs can take long, and the front end stops waiting at the
// deadline.
// Once the new repository is in place, what is left to do only tidies up,
// so its failures go to warn: the previous repository is then removed by
// the next NewRepoBuild.
func (b RepoBuild) Publish(c Config, deadline time.Time, warn io.Writer) error {
	expired := func() error {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("the session expired at %s before the build was published; nothing was published", deadline.Format(time.RFC3339))
		}
		return nil
	}
	if err := expired(); err != nil {
		return err
	}
	// Every file of the build reaches the disk before the rename that makes
	// it current (one syncfs rather than an fsync per file).
	if err := syncFS(b.Dir); err != nil {
		return fmt.Errorf("publishing the cached repository: %w", err)
	}
	if err := expired(); err != nil {
		return err
	}
	cached := c.Path(CachedRepoDir)
	if err := atomicfile.ReplaceDir(b.Dir, cached); err != nil {
		return fmt.Errorf("publishing the cached repository: %w", err)
	}
	// b.Dir now holds the previous repository, if there was one.
	for _, err := range []error{atomicfile.SyncDir(filepath.Dir(cached)), os.RemoveAll(b.Dir)} {
		if err != nil {
			fmt.Fprintf(warn, "warning: the new cached repository is in place, but: %v\n", err)
		}
	}
	return nil
}

func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// removeEntries removes what crashed runs left in parent: every entry whose
// name starts with prefix.
func removeEntries(parent, prefix string) error {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := os.RemoveAll(filepath.Join(parent, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
