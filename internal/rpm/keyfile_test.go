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

// A key file is trusted whole (P6): a block that is no valid key refuses
// the file even after a valid one, as the file is the unit of trust.
func TestReadKeyFileRefusesABadBlock(t *testing.T) {
	bad := []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PUBLIC KEY BLOCK-----\n")
	path := filepath.Join(t.TempDir(), "RPM-GPG-KEY-half")
	if err := os.WriteFile(path, append(keys(t).ed.PublicKeyArmored(), bad...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := rpm.ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "not a valid armored public key") {
		t.Errorf("a valid key, then a block that is none: %d keys, %v; want the file refused", len(got), err)
	}
}

// The bound is 1 MiB: a key file of exactly 1 MiB is read (its key loads).
func TestReadKeyFileAtTheSizeBound(t *testing.T) {
	key := keys(t).ed.PublicKeyArmored()
	path := filepath.Join(t.TempDir(), "RPM-GPG-KEY-padded")
	if err := os.WriteFile(path, append(key, bytes.Repeat([]byte("\n"), 1<<20-len(key))...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := rpm.ReadKeyFile(path); err != nil || len(got) != 1 {
		t.Errorf("a key file of exactly 1 MiB: %d keys, %v; want its key", len(got), err)
	}
}
