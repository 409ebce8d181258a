//go:build !amd64

package sandbox

// forkCalls are this architecture's system calls that only start processes:
// the generic table (arm64) has none, processes come from clone alone.
var forkCalls []uint32
