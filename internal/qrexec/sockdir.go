package qrexec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// CheckSockDir refuses a socket directory that someone other than dom0
// could rebuild (C1): whoever may rename SOCKDIR, or any directory above it,
// or repoint a symbolic link on the way, can put a tree of their own in its
// place, with a daemon.sock that takes dom0's calls for a domain or an
// agent.sock that answers for one. So the path is resolved one name at a
// time, as the kernel does, and every directory it passes through must
// belong to root or to this process's user and not be writable by group or
// others (a sticky one above SOCKDIR, such as /tmp, excepted: only an
// entry's owner may rename it there), and every link must belong to root or
// this user too (and lie in such a directory).
func CheckSockDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := walkSockDir(abs); err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	return nil
}

// maxLinks is how many symbolic links a path may pass through, as the
// kernel's limit.
const maxLinks = 40

// walkSockDir resolves the absolute path name by name, checking each
// directory and link it passes through.
func walkSockDir(path string) error {
	current, pending := "/", strings.Split(path, "/")
	if err := checkSockDirStep(current, pending); err != nil {
		return err
	}
	for links := 0; len(pending) > 0; {
		name := pending[0]
		pending = pending[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			// current holds no link: its parent is the kernel's "..",
			// checked again in case it is where the path ends.
			current = filepath.Dir(current)
			if err := checkSockDirStep(current, pending); err != nil {
				return err
			}
			continue
		}
		next := filepath.Join(current, name)
		var st unix.Stat_t
		if err := unix.Lstat(next, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: next, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if !ownedByDom0(st.Uid) {
				return fmt.Errorf("%s is a symbolic link of uid %d, who may point it elsewhere", next, st.Uid)
			}
			if links++; links > maxLinks {
				return &os.PathError{Op: "resolve", Path: path, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				current = "/"
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		}
		current = next
		if err := checkSockDirStep(current, pending); err != nil {
			return err
		}
	}
	return nil
}

// checkSockDirStep checks one directory on SOCKDIR's path; pending is what
// is left of the path after it (nothing: it is SOCKDIR, whose own mode
// must not let others write even with the sticky bit).
func checkSockDirStep(d string, pending []string) error {
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: d, Err: err}
	}
	leaf := !slices.ContainsFunc(pending, func(name string) bool { return name != "" && name != "." })
	switch mode := st.Mode & 0o7777; {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%s is not a directory", d)
	case !ownedByDom0(st.Uid):
		return fmt.Errorf("%s belongs to uid %d, who may replace what is below it: chown root %s", d, st.Uid, d)
	case mode&0o022 != 0 && (leaf || mode&unix.S_ISVTX == 0):
		return fmt.Errorf("%s has mode %#o, so others than dom0 may replace what is below it: chmod go-w %s", d, mode, d)
	}
	return nil
}

// ownedByDom0 says whether uid is root or this process's user, both dom0.
func ownedByDom0(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid()
}
