package updatevm

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pedos.dev/updates/internal/dnftool"
	"pedos.dev/updates/internal/updatecall"
)

// rootGPGKeys points every key URL of a gpgkey option into the
// installroot, those on the option's continuation lines too: dnf reads an
// indented line as more of the option before it, so a second key listed
// there would otherwise be read from the UpdateVM's own file system, where
// it is not, and dnf would refuse the repository's packages. A URL into
// dom0's keyring (wherever updates.conf puts it) becomes one into
// updatecall.SyncKeysDir, where dom0 ships the keyring's keys.
func TestRootGPGKeys(t *testing.T) {
	root := t.TempDir()
	write := func(name, data string) { writeBelow(t, root, name, data) }
	write(updatecall.SyncKeyring, "/srv/keys\n")
	write(updatecall.SyncReposDir+"/pedos.repo", "[current]\n"+
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
	got, err := os.ReadFile(filepath.Join(root, updatecall.SyncReposDir, "pedos.repo"))
	if err != nil {
		t.Fatal(err)
	}
	want := "[current]\n" +
		"baseurl=file:///mirror\n" +
		"gpgkey=file://" + root + "/etc/pki/rpm-gpg/a\n" +
		"  file://" + root + "/" + updatecall.SyncKeysDir + "/b\n" +
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
			writeBelow(t, root, updatecall.SyncKeyring, tc.keyring)
		}
		writeBelow(t, root, updatecall.SyncReposDir+"/pedos.repo", tc.in)
		if err := (&UpdateVM{InstallRoot: root}).rootGPGKeys(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, updatecall.SyncReposDir, "pedos.repo"))
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
	rpmdb := entry{updatecall.SyncRPMDB, tar.TypeReg, 3}
	for _, tc := range []struct {
		entries []entry
		want    string // "" for accepted
	}{
		{[]entry{{"etc", tar.TypeDir, 0}, rpmdb, {updatecall.SyncReposDir + "/a.repo", tar.TypeReg, 3}, {updatecall.SyncKeysDir + "/KEY", tar.TypeReg, 3}, {updatecall.SyncReleaseVer, tar.TypeReg, 3},
			{updatecall.SyncPinnedRepos, tar.TypeReg, 3}, {updatecall.SyncKeyring, tar.TypeReg, 3}, {updatecall.SyncDNFConf, tar.TypeReg, 3}, {updatecall.SyncDNFVarsDir + "/contentdir", tar.TypeReg, 3}}, ""},
		// A name twice would let the later copy replace what was read first.
		{[]entry{rpmdb, {updatecall.SyncReposDir + "/a.repo", tar.TypeReg, 3}, {updatecall.SyncReposDir + "/a.repo", tar.TypeReg, 3}}, "file exists"},
		// The entry limit counts every entry, directories too.
		{append(slices.Repeat([]entry{{"etc", tar.TypeDir, 0}}, maxSyncFiles-1), rpmdb), ""},
		{append(slices.Repeat([]entry{{"etc", tar.TypeDir, 0}}, maxSyncFiles), rpmdb), fmt.Sprintf("more than %d entries", maxSyncFiles)},
		{[]entry{{updatecall.SyncReposDir + "/a.repo", tar.TypeReg, 3}}, "no " + updatecall.SyncRPMDB},
		{[]entry{rpmdb, {"etc/passwd", tar.TypeReg, 3}}, `unexpected entry "etc/passwd"`},
		{[]entry{rpmdb, {updatecall.SyncReposDir + "/../../x", tar.TypeReg, 3}}, "unexpected entry"},
		{[]entry{rpmdb, {updatecall.SyncReposDir + "/.hidden", tar.TypeReg, 3}}, "unexpected entry"},
		{[]entry{rpmdb, {updatecall.SyncReposDir + "/link.repo", tar.TypeSymlink, 0}}, "unexpected entry"},
		{[]entry{{updatecall.SyncRPMDB, tar.TypeReg, maxSyncFileBytes + 1}}, "larger than"},
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

// syncStream is a tar stream as dom0 sends it: name and contents.
func syncStream(t *testing.T, files map[string]string) *bytes.Reader {
	t.Helper()
	var stream bytes.Buffer
	tw := tar.NewWriter(&stream)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: int64(len(data)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	tw.Close()
	return bytes.NewReader(stream.Bytes())
}

// A sync replaces the installroot's copy of dom0's configuration whole: a
// repository file or $releasever dom0 no longer has is gone after the next
// sync, and the key URLs of what it has point into the installroot (with
// the real rpmdb importing dom0's database export).
func TestApplySyncReplacesTheConfiguration(t *testing.T) {
	if _, err := exec.LookPath("rpmdb"); err != nil {
		t.Skip("rpmdb not installed")
	}
	tools, err := dnftool.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer tools.Close()
	dom0 := t.TempDir()
	if err := tools.Run(t.Context(), "rpmdb --initdb", nil, io.Discard, "rpmdb", "--root", dom0, "--initdb"); err != nil {
		t.Fatal(err)
	}
	var export bytes.Buffer
	if err := tools.ExportRPMDB(dom0, &export); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	u := &UpdateVM{InstallRoot: root, Tools: tools, Log: io.Discard}
	first := map[string]string{updatecall.SyncRPMDB: export.String(), updatecall.SyncReleaseVer: "42\n",
		updatecall.SyncReposDir + "/old.repo": "[old]\ngpgkey=file:///etc/pki/rpm-gpg/k\n"}
	second := map[string]string{updatecall.SyncRPMDB: export.String(), updatecall.SyncReposDir + "/new.repo": "[new]\nbaseurl=file:///m\n"}
	for i, files := range []map[string]string{first, second} {
		if err := u.ApplySync(syncStream(t, files)); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
		if rel, err := u.readLines(updatecall.SyncReleaseVer); i == 0 && (err != nil || !slices.Equal(rel, []string{"42"})) {
			t.Errorf("$releasever after the first sync: %q (%v)", rel, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, updatecall.SyncReposDir, "new.repo")); err != nil {
		t.Errorf("the second sync's repository: %v", err)
	}
	for _, gone := range []string{updatecall.SyncReposDir + "/old.repo", updatecall.SyncReleaseVer} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s, which the second sync did not hold, is still there (%v)", gone, err)
		}
	}
	if err := u.ApplySync(syncStream(t, first)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, updatecall.SyncReposDir, "old.repo"))
	if want := "[old]\ngpgkey=file://" + root + "/etc/pki/rpm-gpg/k\n"; err != nil || string(got) != want {
		t.Errorf("old.repo after a sync: %q (%v), want %q", got, err, want)
	}
}
