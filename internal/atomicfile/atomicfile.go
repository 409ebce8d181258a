// Package atomicfile replaces files and directories so that a reader, or a
// crash at any instant (threats F1, F4), sees either the old version or the
// new one, complete — never a mix or a half-written file; and reads them
// without waiting on what is not a regular file (regular.go).
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// WriteFile writes data to a temporary file beside path, syncs it, renames it
// over path and syncs the directory.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err = f.Write(data); err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// ReplaceDir puts the directory next in place of dir in one step: with
// renameat2(RENAME_EXCHANGE) when dir exists, with rename otherwise. What was
// at dir is then at next's name, for the caller to remove. Both must be on
// the same file system. An error means nothing moved. The caller syncs the
// parent directory (SyncDir) to make the swap durable.
func ReplaceDir(next, dir string) error {
	err := unix.Renameat2(unix.AT_FDCWD, next, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOENT) {
		if _, statErr := os.Lstat(dir); errors.Is(statErr, os.ErrNotExist) {
			err = os.Rename(next, dir)
		}
	}
	if err != nil {
		return &os.LinkError{Op: "replace", Old: next, New: dir, Err: err}
	}
	return nil
}

// SyncDir flushes a directory's entries to disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
