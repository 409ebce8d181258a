package sandbox

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// Futimens reports the kernel's refusal (qfile.md: "the receiver then applies
// its real mode and times"; times it could not set must not pass as set): a
// descriptor that is not one is EBADF, not success.
func TestFutimensReportsAFailure(t *testing.T) {
	if err := Futimens(-1, [2]unix.Timespec{}); !errors.Is(err, unix.EBADF) {
		t.Errorf("Futimens(-1): %v, want EBADF", err)
	}
}
