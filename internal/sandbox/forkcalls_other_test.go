//go:build !amd64

package sandbox

import "golang.org/x/sys/unix"

// forkCalls are this architecture's system calls that only start processes:
// the generic table (arm64) has none, processes come from clone alone.
var forkCalls []uint32

// ipcAndMetadata are this architecture's SysV IPC, path-metadata and other-process calls the
// filter denies, in its order: its own first (the generic table has no chmod, utime, utimes or
// futimesat), then those of every architecture.
var ipcAndMetadata = append([]uint32{unix.SYS_SHMGET, unix.SYS_SEMGET, unix.SYS_MSGGET,
	unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_KEYCTL,
	unix.SYS_FCHMODAT, unix.SYS_FCHMODAT2, unix.SYS_FCHOWNAT}, deniedEverywhere...)
