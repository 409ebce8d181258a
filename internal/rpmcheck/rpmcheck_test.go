package rpmcheck

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/rpm"
)

// A FIFO is refused by name at once, not opened and waited on for a
// writer that never comes; a directory is named as one.
func TestOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "f.rpm")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	subdir := filepath.Join(dir, "d.rpm")
	if err := os.Mkdir(subdir, 0o755); err != nil {
		t.Fatal(err)
	}
	const rest = ", not a package file: only a regular file is read"
	for path, want := range map[string]string{fifo: "a named pipe (FIFO)" + rest, subdir: "a directory" + rest,
		"/dev/null": "a character device" + rest} {
		done := make(chan error, 1)
		go func() {
			_, err := verifyFile(&rpm.Verifier{}, path, filepath.Join(t.TempDir(), "out.rpm"))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || err.Error() != want {
				t.Errorf("%s: %v, want %q", path, err, want)
			}
		case <-time.After(30 * time.Second):
			// Open the FIFO's other end, so that the blocked open returns.
			if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				w.Close()
			}
			<-done
			t.Errorf("%s: still not answered after 30 s: the open waits for a writer", path)
		}
	}
}
