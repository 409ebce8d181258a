package updatevm

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"pedos.dev/updates/internal/updatecall"
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
	write(updatecall.SyncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/current/\n")
	for i, step := range []struct {
		change   func()
		wantKept bool
	}{
		{func() {}, false}, // no fingerprint yet
		{func() {}, true},
		{func() { write(updatecall.SyncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/old/\n") }, false},
		{func() { write(updatecall.SyncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/current/\n") }, false},
		{func() {}, true},
		{func() { write(updatecall.SyncReleaseVer, "42\n") }, false},
		{func() { write(updatecall.SyncDNFConf, "[main]\nexcludepkgs=x\n") }, false},
		{func() { write(updatecall.SyncDNFVarsDir+"/contentdir", "pub\n") }, false},
		{func() {}, true},
		// The same value under another variable's name changes the URLs.
		{func() {
			os.Remove(filepath.Join(root, updatecall.SyncDNFVarsDir, "contentdir"))
			write(updatecall.SyncDNFVarsDir+"/basearch", "pub\n")
		}, false},
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

// Every dnf run is confined to what dom0 shipped (its dnf.conf and
// repository files, this root's cache, no plugins of the UpdateVM's), under
// dom0's $releasever, and asks for the metadata signatures of the pinned
// repositories, so that dnf keeps repomd.xml.asc to forward. Comment lines of
// the files dom0 wrote are no values.
func TestDNFBaseConfinesDNF(t *testing.T) {
	root := t.TempDir()
	writeBelow(t, root, updatecall.SyncReleaseVer, "# dom0's $releasever\n42\n")
	writeBelow(t, root, updatecall.SyncPinnedRepos, "# verified in dom0\ncurrent\n\nextras\n")
	args, err := (&UpdateVM{InstallRoot: root}).dnfBase()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--installroot=" + root,
		"--config=" + filepath.Join(root, "etc/dnf/dnf.conf"),
		"--setopt=reposdir=" + filepath.Join(root, "etc/yum.repos.d"),
		"--setopt=cachedir=" + filepath.Join(root, "var/cache/dnf"),
		"--noplugins", "-y", "--refresh", "--releasever=42",
		"--setopt=current.repo_gpgcheck=1", "--setopt=extras.repo_gpgcheck=1",
	}
	if !slices.Equal(args, want) {
		t.Errorf("dnf's base arguments:\n%q\nwant\n%q", args, want)
	}
}
