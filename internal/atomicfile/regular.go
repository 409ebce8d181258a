package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// OpenRegular opens path as os.OpenFile does, but never waits on a FIFO
// (O_NONBLOCK: an open of one blocks until the other end is opened, and a
// program stuck there ignores SIGINT and SIGTERM) and refuses anything but
// a regular file. dom0's state, configuration and log files are only ever
// regular files; anything else at their path is a mistake to report, not
// to wait on. A symbolic link to a missing file is not "no file" (a file
// that is optional then silently missing: pinned keys, rollback
// protection), but an error.
func OpenRegular(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NONBLOCK, perm)
	if errors.Is(err, unix.ENXIO) { // a FIFO no one reads, opened for writing
		info, statErr := os.Stat(path)
		if statErr == nil {
			return nil, notRegular(path, info)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		if info, lerr := os.Lstat(path); lerr == nil && info.Mode().Type() == fs.ModeSymlink {
			return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: a symbolic link to a missing file (on a file system not mounted?)", ErrNotRegular)}
		}
	}
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = notRegular(path, info)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ErrNotRegular is a path that holds something other than a regular file.
var ErrNotRegular = errors.New("not a regular file")

func notRegular(path string, info fs.FileInfo) error {
	kind := "special file"
	switch info.Mode().Type() {
	case fs.ModeDir:
		kind = "directory"
	case fs.ModeNamedPipe:
		kind = "FIFO"
	case fs.ModeSocket:
		kind = "socket"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		kind = "device"
	}
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: a %s", ErrNotRegular, kind)}
}

// ReadRegular reads the regular file at path (OpenRegular), of at most max
// bytes: a state file grown past any size of ours (a sparse file of a
// gigabyte) is refused before it fills memory.
func ReadRegular(path string, max int64) ([]byte, error) {
	f, err := OpenRegular(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := ReadBounded(f, max)
	if _, named := errors.AsType[*fs.PathError](err); err != nil && !named {
		err = &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return data, err
}

// ReadBounded reads what is left of r, refusing more than max bytes as too
// large (not cut to max, which would read as a corrupt file). The caller
// names the file.
func ReadBounded(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err == nil && int64(len(data)) > max {
		err = fmt.Errorf("larger than %d bytes, which no file of ours is", max)
	}
	return data, err
}
