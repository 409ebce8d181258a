package sandbox

import "golang.org/x/sys/unix"

// forkCalls are this architecture's system calls that only start processes.
var forkCalls = []uint32{unix.SYS_FORK, unix.SYS_VFORK}

// ipcAndMetadata are this architecture's SysV IPC, path-metadata and other-process calls the
// filter denies, in its order: its own first, then those of every architecture.
var ipcAndMetadata = append([]uint32{unix.SYS_SHMGET, unix.SYS_SEMGET, unix.SYS_MSGGET,
	unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, unix.SYS_KEYCTL,
	unix.SYS_CHMOD, unix.SYS_FCHMODAT, unix.SYS_FCHMODAT2, unix.SYS_UTIME, unix.SYS_UTIMES, unix.SYS_FUTIMESAT,
	unix.SYS_CHOWN, unix.SYS_LCHOWN, unix.SYS_FCHOWNAT}, deniedEverywhere...)
