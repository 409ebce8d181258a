package updatevm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/updatecall"
)

// Only the repositories this run enables have their metadata exported:
// dom0 refuses a delivery holding metadata of a repository it does not
// count as enabled, so a --disablerepo of a pinned repository whose cache
// is still here would otherwise always be refused. The switches apply in
// their order, as dnf and dom0 apply them.
func TestExportMetadataEnabledOnly(t *testing.T) {
	root := t.TempDir()
	write := func(name, data string) { writeBelow(t, root, name, data) }
	write(updatecall.SyncReposDir+"/pedos.repo", "[current]\nbaseurl=file:///a\n[testing]\nenabled=0\nbaseurl=file:///b\n[extras]\nbaseurl=file:///c\n")
	write(updatecall.SyncPinnedRepos, "current\ntesting\nextras\n")
	for _, repo := range []string{"current", "testing", "extras"} {
		cache := "var/cache/dnf/" + repo + "-0123456789abcdef/repodata/"
		write(cache+"repomd.xml", `<repomd><data type="primary"><location href="repodata/primary.xml"/></data></repomd>`)
		write(cache+"primary.xml", "<metadata/>")
	}
	u := &UpdateVM{InstallRoot: root, Log: io.Discard}
	for _, tc := range []struct {
		options []string
		want    []string
	}{
		{nil, []string{"current", "extras"}},
		{[]string{"--disablerepo=current"}, []string{"extras"}},
		{[]string{"--disablerepo=*", "--enablerepo=testing"}, []string{"testing"}},
		{[]string{"--enablerepo=testing", "--disablerepo=*"}, nil},
	} {
		files, err := u.ExportMetadata(t.TempDir(), Request{DNFOptions: tc.options}.RepoSwitches())
		if err != nil {
			t.Fatalf("%q: %v", tc.options, err)
		}
		var got []string
		for _, f := range files {
			for _, repo := range []string{"current", "testing", "extras"} {
				if filepath.Base(f) == repomdName(repo) {
					got = append(got, repo)
				}
			}
		}
		if !slices.Equal(got, tc.want) || len(files) != 2*len(tc.want) {
			t.Errorf("%q: exported %q (%d files), want the metadata of %q", tc.options, got, len(files), tc.want)
		}
	}
}

func TestRequestRepoSwitches(t *testing.T) {
	got := Request{DNFOptions: []string{"--best", "--disablerepo=*", "--exclude=kernel", "--enablerepo=a,b"}}.RepoSwitches()
	if want := []dnfconf.RepoSwitch{{Glob: "*"}, {Enable: true, Glob: "a,b"}}; !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// cacheRepo writes a dnf cache directory (NAME-HASH, as dnf names it) whose
// repodata holds files, and sets its repomd.xml's time to mtime.
func cacheRepo(t *testing.T, root, dir string, mtime time.Time, files map[string]string) {
	t.Helper()
	for name, data := range files {
		writeBelow(t, root, "var/cache/dnf/"+dir+"/repodata/"+name, data)
	}
	repomd := filepath.Join(root, "var/cache/dnf", dir, "repodata", "repomd.xml")
	if err := os.Chtimes(repomd, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func repomdListing(types ...string) string {
	var b strings.Builder
	b.WriteString("<repomd>")
	for _, tl := range types {
		typ, href, _ := strings.Cut(tl, "=")
		fmt.Fprintf(&b, `<data type="%s"><location href="%s"/></data>`, typ, href)
	}
	return b.String() + "</repomd>"
}

// The metadata forwarded for a repository is that repository's newest cache
// directory, never one of a repository whose id only begins with its own
// (updates-testing for updates), with its detached signature when there is
// one, and the primary listed as such, not the first data listed. A pinned
// repository without a cache is a warning, and the others are still sent.
func TestExportMetadataFromTheCache(t *testing.T) {
	root := t.TempDir()
	writeBelow(t, root, updatecall.SyncReposDir+"/pedos.repo", "[updates]\nbaseurl=file:///a\n[updates-testing]\nbaseurl=file:///b\n[nocache]\nbaseurl=file:///c\n")
	writeBelow(t, root, updatecall.SyncPinnedRepos, "updates\nupdates-testing\nnocache\n")
	now := time.Now()
	listing := repomdListing("filelists=repodata/filelists.xml", "primary=repodata/primary.xml")
	cacheRepo(t, root, "updates-0123456789abcdef", now.Add(-time.Hour), map[string]string{
		"repomd.xml": listing, "primary.xml": "old updates", "filelists.xml": "files"})
	cacheRepo(t, root, "updates-fedcba9876543210", now, map[string]string{
		"repomd.xml": listing, "repomd.xml.asc": "signature", "primary.xml": "new updates", "filelists.xml": "files"})
	cacheRepo(t, root, "updates-testing-0123456789abcdef", now.Add(time.Hour), map[string]string{
		"repomd.xml": listing, "primary.xml": "testing", "filelists.xml": "files"})
	var log strings.Builder
	u := &UpdateVM{InstallRoot: root, Log: &log}
	dir := t.TempDir()
	files, err := u.ExportMetadata(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		repomdName("updates"): listing, repomdAscName("updates"): "signature", primaryName("updates"): "new updates",
		repomdName("updates-testing"): listing, primaryName("updates-testing"): "testing",
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if w, ok := want[filepath.Base(f)]; !ok || err != nil || string(data) != w {
			t.Errorf("exported %s: %q (%v), want %q", filepath.Base(f), data, err, w)
		}
		delete(want, filepath.Base(f))
	}
	if len(want) != 0 {
		t.Errorf("not exported: %v", want)
	}
	if !strings.Contains(log.String(), "warning: no cached metadata for repository nocache") {
		t.Errorf("log %q does not warn of the repository without a cache", log.String())
	}
}

// The mirror wrote repomd.xml: a primary location outside the cached
// repodata, or compressed in a way dom0's metadata is never sent in, is an
// error, not a file of the UpdateVM read and forwarded. The compressions dnf
// meets are undone (createrepo_c's gz, bz2 and xz; zstd as Fedora's mirrors serve).
func TestExportMetadataPrimaryLocation(t *testing.T) {
	if _, err := exec.LookPath("createrepo_c"); err != nil {
		t.Skip("createrepo_c not installed")
	}
	var zst bytes.Buffer
	zw, err := zstd.NewWriter(&zst)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write([]byte("<metadata/>"))
	zw.Close()
	for _, tc := range []struct {
		name     string
		compress string // createrepo_c's --general-compress-type, or "" for repodata written here
		repodata map[string]string
		want     string // the error, or "" for a primary that reads <metadata
	}{
		{name: "gz", compress: "gz"},
		{name: "xz", compress: "xz"},
		{name: "zstd", repodata: map[string]string{"repomd.xml": repomdListing("primary=repodata/p.xml.zst"), "p.xml.zst": zst.String()}},
		{name: "bz2", compress: "bz2"},
		{name: "unknown compression", repodata: map[string]string{"repomd.xml": repomdListing("primary=repodata/p.xml.lz4"), "p.xml.lz4": "x"}, want: "unsupported compression"},
		{name: "outside-repodata", repodata: map[string]string{"repomd.xml": repomdListing("primary=primary.xml")}, want: "lists no primary metadata under repodata/"},
		{name: "climbing-out", repodata: map[string]string{"repomd.xml": repomdListing("primary=repodata/../../../../../../etc/hostname")}, want: "lists no primary metadata under repodata/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeBelow(t, root, updatecall.SyncReposDir+"/pedos.repo", "[current]\nbaseurl=file:///a\n")
			writeBelow(t, root, updatecall.SyncPinnedRepos, "current\n")
			cache := filepath.Join(root, "var/cache/dnf/current-0123456789abcdef")
			if tc.compress != "" {
				if err := os.MkdirAll(cache, 0o755); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command("createrepo_c", "-q", "--no-database", "--general-compress-type="+tc.compress, cache).CombinedOutput(); err != nil {
					t.Fatalf("createrepo_c: %v\n%s", err, out)
				}
			}
			for name, data := range tc.repodata {
				writeBelow(t, cache, "repodata/"+name, data)
			}
			u := &UpdateVM{InstallRoot: root, Log: io.Discard}
			files, err := u.ExportMetadata(t.TempDir(), nil)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("ExportMetadata: %v (%q), want an error saying %q", err, files, tc.want)
				}
				return
			}
			if err != nil || len(files) != 2 {
				t.Fatalf("ExportMetadata: %q, %v", files, err)
			}
			if data, err := os.ReadFile(files[1]); err != nil || !strings.Contains(string(data), "<metadata") {
				t.Errorf("%s holds %.60q (%v), want the primary metadata", files[1], data, err)
			}
		})
	}
}
