package qrexec

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// CheckSockDir refuses a socket directory that someone other than dom0
// could rebuild (C1): whoever may rename SOCKDIR, or any directory above it,
// can put a tree of their own in its place, with a daemon.sock that takes
// dom0's calls for a domain or an agent.sock that answers for one. So
// SOCKDIR and every directory above it must belong to root or to this
// process's user, and none may be writable by group or others, except a
// sticky one (such as /tmp) above SOCKDIR, where only an entry's owner may
// rename it. Both the path as given and the one it resolves to are walked:
// a symbolic link on the way must belong to root or this user too.
func CheckSockDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	for _, p := range []string{abs, resolved} {
		for d, leaf := p, true; ; d, leaf = filepath.Dir(d), false {
			if err := checkSockDirStep(d, leaf); err != nil {
				return fmt.Errorf("socket directory %s: %w", dir, err)
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return nil
}

// checkSockDirStep checks one directory on SOCKDIR's path (leaf: SOCKDIR
// itself), and the link at that name if it is one.
func checkSockDirStep(d string, leaf bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: d, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if !ownedByDom0(st.Uid) {
			return fmt.Errorf("%s is a symbolic link of uid %d, who may point it elsewhere", d, st.Uid)
		}
		if err := unix.Stat(d, &st); err != nil {
			return &os.PathError{Op: "stat", Path: d, Err: err}
		}
	}
	switch mode := st.Mode & 0o7777; {
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
