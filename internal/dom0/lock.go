package dom0

import (
	"os"

	"golang.org/x/sys/unix"
)

// LockFile takes an exclusive lock on path without waiting; the returned
// function releases it. The lock dies with the process, so a crash never
// leaves it held.
func LockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "lock", Path: path, Err: err}
	}
	return func() { f.Close() }, nil
}
