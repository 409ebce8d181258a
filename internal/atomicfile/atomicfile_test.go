package atomicfile

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// WriteFile replaces the file by a rename (F1): a reader that opened the old
// file keeps reading all of it, never a mix, and the mode is perm whatever
// the temporary file was created with.
func TestWriteFileReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	var old *os.File
	for _, content := range []string{"first", "second, longer"} {
		if err := WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
		if old == nil {
			if old, err = os.Open(p); err != nil {
				t.Fatal(err)
			}
			defer old.Close()
		}
	}
	if got, err := io.ReadAll(old); err != nil || string(got) != "first" {
		t.Errorf("a reader of the old file read %q, %v; want it whole, as it was", got, err)
	}
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", info.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestReplaceDir(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "repo")
	mk := func(name, file string) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, file), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	// No target yet: a plain rename.
	first := mk("build1", "a")
	if err := ReplaceDir(first, target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "a")); err != nil {
		t.Fatalf("first publication: %v", err)
	}
	// A target exists: exchanged, the old one now sits at the build's name.
	second := mk("build2", "b")
	if err := ReplaceDir(second, target); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "b")); err != nil {
		t.Errorf("second publication: %v", err)
	}
	if _, err := os.Stat(filepath.Join(second, "a")); err != nil {
		t.Errorf("the old directory is not at the build's name: %v", err)
	}
	// A build that does not exist is an error, and the target stays.
	if err := ReplaceDir(filepath.Join(dir, "missing"), target); err == nil {
		t.Error("replacing with a missing directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(target, "b")); err != nil {
		t.Errorf("the target was damaged by a failed replace: %v", err)
	}
}
