package testbin

import (
	"os/exec"
	"testing"
)

// Immutable makes path immutable (chattr +i) until the test ends, so that
// even root cannot change, rename or remove it: how tests make a write that
// dom0's code must survive fail. It skips the test where chattr or the file
// system cannot do it (a tmpfs).
func Immutable(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not installed")
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("chattr +i %s: %v %s", path, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v %s", path, err, out)
		}
	})
}
