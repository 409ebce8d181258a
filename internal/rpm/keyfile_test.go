package rpm_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/rpm"
)

// A key file is read whole or not at all: one over the size bound is
// refused even when a valid key comes first (a truncated read would keep
// that key and lose what follows it).
func TestReadKeyFileRefusesAnOversizedFile(t *testing.T) {
	key := keys(t).ed.PublicKeyArmored()
	path := filepath.Join(t.TempDir(), "RPM-GPG-KEY-big")
	if err := os.WriteFile(path, append(key, bytes.Repeat([]byte("\n"), 1<<20)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := rpm.ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Errorf("a key file over 1 MiB: %d keys, %v; want it refused as too large", len(got), err)
	}
}
