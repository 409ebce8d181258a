package dom0

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example updates.conf shipped in dist/ must load, and say what the
// defaults are.
func TestShippedConfigLoads(t *testing.T) {
	c, err := LoadConfig(filepath.Join("..", "..", "dist", "dom0"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig(c.Root)
	if c.UpdateVM != want.UpdateVM || c.MaxBytes != want.MaxBytes || c.MaxFiles != want.MaxFiles ||
		c.ReceiveTimeout != want.ReceiveTimeout || c.MaxMetadataAge != want.MaxMetadataAge ||
		c.RequireFresh != want.RequireFresh || c.UnpackerUser != want.UnpackerUser {
		t.Errorf("the shipped updates.conf differs from the defaults:\n got %+v\nwant %+v", c, want)
	}
	repo, err := os.ReadFile(filepath.Join("..", "..", "dist", "dom0", CachedRepoConfDir, "PedOS-cached.repo"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"gpgcheck=1", "repo_gpgcheck=0", "metadata_expire=0", "baseurl=file://" + CachedRepoDir} {
		if !strings.Contains(string(repo), line+"\n") {
			t.Errorf("PedOS-cached.repo lacks %q", line)
		}
	}
	if strings.Contains(string(repo), "\ngpgkey") {
		t.Error("PedOS-cached.repo has a gpgkey= line: dnf would import keys by itself")
	}
}
