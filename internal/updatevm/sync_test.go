package updatevm

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// Only a gpgkey option's lines are rewritten, as dnf reads the option: with
// blanks around its "=", and up to an empty line or a comment, after which
// an indented line belongs to no option. Without dom0's keyring path, only
// file:/// URLs move into the installroot.
func TestRootGPGKeysLineRules(t *testing.T) {
	for _, tc := range []struct {
		keyring, in, want string // want: "R" stands for the installroot
	}{
		{"", "[a]\ngpgkey = file:///etc/pki/rpm-gpg/k\n", "[a]\ngpgkey = file://R/etc/pki/rpm-gpg/k\n"},
		{"", "[a]\ngpgkey\t=file:///k https://keys/k\n", "[a]\ngpgkey\t=file://R/k https://keys/k\n"},
		{"/srv/keys\n", "[a]\ngpgkey=file:///k\n\n  file:///not/a/key\n", "[a]\ngpgkey=file://R/k\n\n  file:///not/a/key\n"},
		{"/srv/keys\n", "[a]\ngpgkey=file:///k\n# file:///comment\n  file:///not/a/key\n", "[a]\ngpgkey=file://R/k\n# file:///comment\n  file:///not/a/key\n"},
	} {
		root := t.TempDir()
		if tc.keyring != "" {
			writeBelow(t, root, SyncKeyring, tc.keyring)
		}
		writeBelow(t, root, syncReposDir+"/pedos.repo", tc.in)
		if err := (&UpdateVM{InstallRoot: root}).rootGPGKeys(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, syncReposDir, "pedos.repo"))
		if want := strings.ReplaceAll(tc.want, "R", root); err != nil || string(got) != want {
			t.Errorf("%q: got %q (%v), want %q", tc.in, got, err, want)
		}
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
		{[]entry{{"etc", tar.TypeDir, 0}, rpmdb, {syncReposDir + "/a.repo", tar.TypeReg, 3}, {SyncKeysDir + "/KEY", tar.TypeReg, 3}, {SyncReleaseVer, tar.TypeReg, 3},
			{SyncPinnedRepos, tar.TypeReg, 3}, {SyncKeyring, tar.TypeReg, 3}, {syncDNFConf, tar.TypeReg, 3}, {syncDNFVarsDir + "/contentdir", tar.TypeReg, 3}}, ""},
		// A name twice would let the later copy replace what was read first.
		{[]entry{rpmdb, {syncReposDir + "/a.repo", tar.TypeReg, 3}, {syncReposDir + "/a.repo", tar.TypeReg, 3}}, "file exists"},
		// The entry limit counts every entry, directories too.
		{append(slices.Repeat([]entry{{"etc", tar.TypeDir, 0}}, maxSyncFiles-1), rpmdb), ""},
		{append(slices.Repeat([]entry{{"etc", tar.TypeDir, 0}}, maxSyncFiles), rpmdb), fmt.Sprintf("more than %d entries", maxSyncFiles)},
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
			t.Errorf("%.200v: %v", tc.entries, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%.200v: %v, want an error saying %q", tc.entries, err, tc.want)
		}
	}
}
