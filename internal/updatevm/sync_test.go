package updatevm

import (
	"os"
	"path/filepath"
	"testing"
)

// rootGPGKeys points every key URL of a gpgkey option into the
// installroot, those on the option's continuation lines too: dnf reads an
// indented line as more of the option before it, so a second key listed
// there would otherwise be read from the UpdateVM's own file system, where
// it is not, and dnf would refuse the repository's packages. A URL into
// dom0's keyring (wherever updates.conf puts it) becomes one into
// SyncKeysDir, where dom0 ships the keyring's keys.
func TestRootGPGKeys(t *testing.T) {
	root := t.TempDir()
	write := func(name, data string) { writeBelow(t, root, name, data) }
	write(SyncKeyring, "/srv/keys\n")
	write(syncReposDir+"/pedos.repo", "[current]\n"+
		"baseurl=file:///mirror\n"+
		"gpgkey=file:///etc/pki/rpm-gpg/a\n"+
		"  file:///srv/keys/b\n"+
		"\tfile:///etc/pki/rpm-gpg/c\n"+
		"metalink=file:///not/a/key\n"+
		"  file:///continues/metalink\n")
	u := &UpdateVM{InstallRoot: root}
	if err := u.rootGPGKeys(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, syncReposDir, "pedos.repo"))
	if err != nil {
		t.Fatal(err)
	}
	want := "[current]\n" +
		"baseurl=file:///mirror\n" +
		"gpgkey=file://" + root + "/etc/pki/rpm-gpg/a\n" +
		"  file://" + root + "/" + SyncKeysDir + "/b\n" +
		"\tfile://" + root + "/etc/pki/rpm-gpg/c\n" +
		"metalink=file:///not/a/key\n" +
		"  file:///continues/metalink\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
