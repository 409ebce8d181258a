package dom0

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadNetworkRepos(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	write := func(path, text string) {
		t.Helper()
		p := c.Path(path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("/etc/dnf/dnf.conf", "[main]\ngpgcheck=1\nexcludepkgs=kernel*\n")
	write(NetworkReposDir+"/pedos.repo", `[pedos-current]
baseurl=http://mirror/current
excludepkgs = xen*, grub2
[pedos-testing]
enabled=0
exclude=never-seen
[pedos-security]
enabled = 1
`)
	for _, tc := range []struct {
		name            string
		enable, disable []string
		enabled         []string
		excludes        []string
	}{
		{"as configured", nil, nil, []string{"pedos-current", "pedos-security"}, []string{"kernel*", "xen*", "grub2"}},
		{"--enablerepo", []string{"pedos-test*"}, nil, []string{"pedos-current", "pedos-security", "pedos-testing"}, []string{"kernel*", "xen*", "grub2", "never-seen"}},
		{"--disablerepo", nil, []string{"pedos-current,pedos-security"}, nil, []string{"kernel*"}},
		{"disable wins over enable", []string{"*"}, []string{"pedos-testing"}, []string{"pedos-current", "pedos-security"}, []string{"kernel*", "xen*", "grub2"}},
	} {
		got, err := ReadNetworkRepos(c, tc.enable, tc.disable)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got.Excludes)
		slices.Sort(tc.excludes)
		if !slices.Equal(got.Enabled, tc.enabled) || !slices.Equal(got.Excludes, tc.excludes) {
			t.Errorf("%s: %+v, want enabled %v excludes %v", tc.name, got, tc.enabled, tc.excludes)
		}
	}
}
