package filekind

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Each kind of file a refusal may meet is named in words, as the file
// system reports it.
func TestOf(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("fifo", link); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		dir: "a directory", fifo: "a named pipe (FIFO)", link: "a symbolic link",
		"/dev/null": "a character device", "/proc/self/status": "a regular file",
	} {
		info, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := Of(info.Mode()); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	for mode, want := range map[fs.FileMode]string{fs.ModeSocket: "a socket", fs.ModeDevice: "a block device", fs.ModeIrregular: "a file of type ?---------"} {
		if got := Of(mode); got != want {
			t.Errorf("mode %v: %q, want %q", mode, got, want)
		}
	}
}

// A raw stat mode is named as the same file's fs.FileMode is.
func TestOfStat(t *testing.T) {
	for _, path := range []string{"/dev/null", "/proc/self/status", "/proc/self", t.TempDir()} {
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			t.Fatal(err)
		}
		info, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := OfStat(st.Mode), Of(info.Mode()); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
	if got := OfStat(0o170000); got != "a file of type 0170000" {
		t.Errorf("an unknown type: %q", got)
	}
}
