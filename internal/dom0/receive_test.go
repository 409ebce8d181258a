package dom0

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testrepo"
)

// One metadata key pinned for two repositories would let the metadata of
// one be passed off as the other's: refused, naming both.
func TestPinnedKeysOnePerRepository(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	keyDir := c.Path("/etc/pki/rpm-gpg")
	if err := os.MkdirAll(keyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	pin := func(repo string) {
		s, err := testrepo.NewSigner(testrepo.KeySpec{Name: repo})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(keyDir, repo)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path, err := s.WritePublicKey(dir)
		if err != nil {
			t.Fatal(err)
		}
		c.MetadataKeys[repo] = strings.TrimPrefix(path, c.Root)
	}
	pin("updates")
	pin("release")
	r := &Receiver{Config: c}
	keys, err := r.pinnedKeys()
	if err != nil || len(keys) != 2 || keys["updates"].Fingerprint == keys["release"].Fingerprint {
		t.Fatalf("two repositories with keys of their own: %v, %v", keys, err)
	}
	c.MetadataKeys["testing"] = c.MetadataKeys["updates"]
	r.Config = c
	_, err = r.pinnedKeys()
	if err == nil || !strings.Contains(err.Error(), "both repositories testing and updates") {
		t.Errorf("the same key pinned twice: %v", err)
	}
}
