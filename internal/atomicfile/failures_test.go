package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

// A write that cannot be completed is an error and changes nothing: the old
// file stays whole and no temporary file is left beside it (threats.md F1,
// F4 and S13: "a clear error naming the cause", the state "unchanged").
// The file system fills up while the temporary file is written.
func TestWriteFileFailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	testbin.Tmpfs(t, dir, "size=64k")
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, bytes.Repeat([]byte("x"), 1<<20), 0o644); err == nil {
		t.Error("a write larger than the file system succeeded")
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != "old" {
		t.Errorf("after the failed write the file holds %.20q (%v), want the old content", got, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left after the failed write: %v", entries)
	}
}

// A temporary file that cannot be created, and a rename that fails, are
// errors (F1: a clear error), not a panic or a success.
func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "missing", "state.json"), []byte("x"), 0o644); err == nil {
		t.Error("a write into a missing directory succeeded")
	}
	// A directory where the file goes: rename(2) cannot replace it.
	p := filepath.Join(dir, "state.json")
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("x"), 0o644); err == nil {
		t.Error("a write over a directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left after the failed rename: %v", entries)
	}
}

// SyncDir of a directory that cannot be opened is an error that says why
// and names it, not a success or an unrelated "invalid argument" (F4: the
// publication is durable only once the parent is synced, so its failure
// must be reported as what it is).
func TestSyncDirMissingDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	err := SyncDir(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(fmt.Sprint(err), missing) {
		t.Errorf("SyncDir(%s) = %v; want an error that it does not exist, naming it", missing, err)
	}
}

// A replace that moves nothing says why and names both directories (style:
// errors name the file involved): a caller tells a missing build from a
// busy or foreign target by the cause it wraps. (The target exists: renameat2's
// bare errno is all the cause there is.)
func TestReplaceDirErrorNamesBoth(t *testing.T) {
	dir := t.TempDir()
	next, target := filepath.Join(dir, "missing"), filepath.Join(dir, "repo")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	err := ReplaceDir(next, target)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(fmt.Sprint(err), next) || !strings.Contains(fmt.Sprint(err), target) {
		t.Errorf("ReplaceDir of a missing build = %v; want a does-not-exist error naming %s and %s", err, next, target)
	}
}
