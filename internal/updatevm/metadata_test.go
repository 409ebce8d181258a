package updatevm

import (
	"io"
	"path/filepath"
	"slices"
	"testing"

	"pedos.dev/updates/internal/dnfconf"
)

// Only the repositories this run enables have their metadata exported:
// dom0 refuses a delivery holding metadata of a repository it does not
// count as enabled, so a --disablerepo of a pinned repository whose cache
// is still here would otherwise always be refused. The switches apply in
// their order, as dnf and dom0 apply them.
func TestExportMetadataEnabledOnly(t *testing.T) {
	root := t.TempDir()
	write := func(name, data string) { writeBelow(t, root, name, data) }
	write(syncReposDir+"/pedos.repo", "[current]\nbaseurl=file:///a\n[testing]\nenabled=0\nbaseurl=file:///b\n[extras]\nbaseurl=file:///c\n")
	write(SyncPinnedRepos, "current\ntesting\nextras\n")
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
