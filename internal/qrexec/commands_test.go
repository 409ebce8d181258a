package qrexec_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

// The commands' own checks of their arguments and configuration.

func TestDaemonWithoutDomainsSaysSo(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.conf")
	writeFile(t, empty, "# no domain yet\n", 0o644)
	for _, file := range []string{filepath.Join(dir, "missing.conf"), empty} {
		cmd := exec.Command(testbin.Path(t, "qrexec-daemon"), "--domains", file, "--sockdir", filepath.Join(dir, "sock"))
		got := run(t, cmd, "")
		if got.code != 1 || !strings.Contains(got.stderr, "no domains to serve") || !strings.Contains(got.stderr, file) {
			t.Errorf("qrexec-daemon --domains %s: %+v", file, got)
		}
	}
}
