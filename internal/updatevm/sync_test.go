package updatevm

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

// dom0's configuration stream is unpacked only as dom0 writes it: the
// listed names as regular files within the limits, with the rpm database
// among them. Anything else is refused rather than written somewhere
// dnf would read it.
func TestExtractSync(t *testing.T) {
	type entry struct {
		name string
		kind byte
		size int64
	}
	rpmdb := entry{SyncRPMDB, tar.TypeReg, 3}
	for _, tc := range []struct {
		entries []entry
		want    string // "" for accepted
	}{
		{[]entry{{"etc", tar.TypeDir, 0}, rpmdb, {syncReposDir + "/a.repo", tar.TypeReg, 3}, {SyncKeysDir + "/KEY", tar.TypeReg, 3}, {SyncReleaseVer, tar.TypeReg, 3}}, ""},
		{[]entry{{syncReposDir + "/a.repo", tar.TypeReg, 3}}, "no " + SyncRPMDB},
		{[]entry{rpmdb, {"etc/passwd", tar.TypeReg, 3}}, `unexpected entry "etc/passwd"`},
		{[]entry{rpmdb, {syncReposDir + "/../../x", tar.TypeReg, 3}}, "unexpected entry"},
		{[]entry{rpmdb, {syncReposDir + "/.hidden", tar.TypeReg, 3}}, "unexpected entry"},
		{[]entry{rpmdb, {syncReposDir + "/link.repo", tar.TypeSymlink, 0}}, "unexpected entry"},
		{[]entry{{SyncRPMDB, tar.TypeReg, maxSyncFileBytes + 1}}, "larger than"},
	} {
		var stream bytes.Buffer
		tw := tar.NewWriter(&stream)
		for _, e := range tc.entries {
			hdr := &tar.Header{Name: e.name, Typeflag: e.kind, Size: e.size, Mode: 0o644, Linkname: "/etc/shadow"}
			if e.kind != tar.TypeSymlink {
				hdr.Linkname = ""
			}
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatal(err)
			}
			// A header alone says the size: the refusal must come before
			// a byte of an oversized body is read.
			if e.size <= 3 {
				tw.Write(bytes.Repeat([]byte("x"), int(e.size)))
			}
		}
		tw.Flush()
		dir := t.TempDir()
		err := extractSync(bytes.NewReader(stream.Bytes()), dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.entries, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want an error saying %q", tc.entries, err, tc.want)
		}
	}
}
