package updatevm

import (
	"os"
	"path/filepath"
	"testing"
)

// dnf's cache survives runs under the same configuration and is emptied
// when a repository file, dnf.conf or $releasever changes (and changes
// back), so that only the configured URL's metadata can be forwarded
// (TestUpdateVMCacheAfterRepoChange in internal/e2e shows the whole case).
func TestDropCacheOnNewConfig(t *testing.T) {
	root := t.TempDir()
	u := &UpdateVM{InstallRoot: root}
	write := func(name, data string) { writeBelow(t, root, name, data) }
	marker := filepath.Join(u.cacheDir(), "current-0123456789abcdef", "repodata", "repomd.xml")
	fill := func() { t.Helper(); write("var/cache/dnf/current-0123456789abcdef/repodata/repomd.xml", "<repomd/>") }
	kept := func() bool { _, err := os.Stat(marker); return err == nil }
	write(syncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/current/\n")
	for i, step := range []struct {
		change   func()
		wantKept bool
	}{
		{func() {}, false}, // no fingerprint yet
		{func() {}, true},
		{func() { write(syncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/old/\n") }, false},
		{func() { write(syncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/current/\n") }, false},
		{func() {}, true},
		{func() { write(SyncReleaseVer, "42\n") }, false},
		{func() { write(syncDNFConf, "[main]\nexcludepkgs=x\n") }, false},
		{func() { write(syncDNFVarsDir+"/contentdir", "pub\n") }, false},
		{func() {}, true},
	} {
		fill()
		step.change()
		if err := u.dropCacheOnNewConfig(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if kept() != step.wantKept {
			t.Errorf("step %d: cache kept %v, want %v", i, kept(), step.wantKept)
		}
	}
}

// writeBelow writes data to the slash-separated name below root.
func writeBelow(t *testing.T, root, name, data string) {
	t.Helper()
	path := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
