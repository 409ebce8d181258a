package qfile

import (
	"syscall"
	"testing"
)

// A receiver's status code is said in the spec's words ("Status"), not the
// C library's; a code the spec gives no meaning keeps the library's.
func TestRefusalMeaning(t *testing.T) {
	for errno, want := range map[syscall.Errno]string{
		syscall.EDQUOT:    "over the receiver's byte or file limit",
		syscall.ENOLINK:   "an unsafe symlink target",
		syscall.ETIMEDOUT: "the stream did not end before the receiver's deadline",
		syscall.EIO:       syscall.EIO.Error(),
	} {
		if got := RefusalMeaning(errno); got != want {
			t.Errorf("RefusalMeaning(%d) = %q, want %q", errno, got, want)
		}
	}
}
