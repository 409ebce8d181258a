package atomicfile

import (
	"bytes"
	"os"
	"path/filepath"
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
