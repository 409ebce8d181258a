package testbin

import (
	"os"
	"os/exec"
	"testing"
)

// Tmpfs mounts a tmpfs with mount's options (size=1m, mode=0755) on dir
// until the test ends: how tests give code a small file system to fill. It
// skips the test where it cannot mount (not root, a container without the
// right to). A mount still in use at the end is detached, so that nothing
// stays mounted.
func Tmpfs(t testing.TB, dir, options string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", options, "pedos-test", dir).CombinedOutput(); err != nil {
		t.Skipf("needs a tmpfs: mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
}
