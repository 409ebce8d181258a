package dom0

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The example updates.conf shipped in dist/ must load, and say what the
// defaults are, but for unpacker_user: the user of its own that the dom0
// package creates (its sysusers.d file), not the default nobody.
func TestShippedConfigLoads(t *testing.T) {
	c, err := LoadConfig(filepath.Join("..", "..", "dist", "dom0"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig(c.Root)
	if c.UpdateVM != want.UpdateVM || c.MaxBytes != want.MaxBytes || c.MaxFiles != want.MaxFiles ||
		c.ReceiveTimeout != want.ReceiveTimeout || c.MaxMetadataAge != want.MaxMetadataAge ||
		c.RequireFresh != want.RequireFresh {
		t.Errorf("the shipped updates.conf differs from the defaults:\n got %+v\nwant %+v", c, want)
	}
	sysusers, err := os.ReadFile(filepath.Join("..", "..", "packaging", "sysusers", "pedos-updates-dom0.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if c.UnpackerUser == want.UnpackerUser || !strings.Contains("\n"+string(sysusers), "\nu "+c.UnpackerUser+" ") {
		t.Errorf("the shipped unpacker_user is %q: want the user the package's sysusers.d file creates, not %q:\n%s", c.UnpackerUser, want.UnpackerUser, sysusers)
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
