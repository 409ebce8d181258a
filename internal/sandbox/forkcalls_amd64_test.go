package sandbox

import "golang.org/x/sys/unix"

// forkCalls are this architecture's system calls that only start processes.
var forkCalls = []uint32{unix.SYS_FORK, unix.SYS_VFORK}
