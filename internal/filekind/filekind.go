// Package filekind names a file's type in words, for messages that refuse a
// file that is not what a command reads or sends: "a named pipe (FIFO)"
// says more to a person than a mode's letters ("p---------") or its octal
// type (010000).
package filekind

import (
	"fmt"
	"io/fs"
	"syscall"
)

// Of names the type of a file of mode, with its article.
func Of(mode fs.FileMode) string {
	switch {
	case mode.IsRegular():
		return "a regular file"
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	}
	return fmt.Sprintf("a file of type %v", mode.Type())
}

// statTypes are stat(2)'s file types as fs.FileMode says them.
var statTypes = map[uint32]fs.FileMode{
	syscall.S_IFREG: 0, syscall.S_IFDIR: fs.ModeDir, syscall.S_IFLNK: fs.ModeSymlink,
	syscall.S_IFIFO: fs.ModeNamedPipe, syscall.S_IFSOCK: fs.ModeSocket,
	syscall.S_IFCHR: fs.ModeDevice | fs.ModeCharDevice, syscall.S_IFBLK: fs.ModeDevice,
}

// OfStat is Of for a stat(2) st_mode, as a raw fstat or lstat returns it.
func OfStat(mode uint32) string {
	m, ok := statTypes[mode&syscall.S_IFMT]
	if !ok {
		return fmt.Sprintf("a file of type %#o", mode&syscall.S_IFMT)
	}
	return Of(m)
}
