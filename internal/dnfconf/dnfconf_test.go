package dnfconf

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeBelow writes text to the dom0 path below c's root.
func writeBelow(t *testing.T, root, path, text string) {
	t.Helper()
	p := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadNetworkRepos(t *testing.T) {
	root := t.TempDir()
	write := func(path, text string) { writeBelow(t, root, path, text) }
	write("/etc/dnf/dnf.conf", "[main]\ngpgcheck=1\nexcludepkgs=shim\n; a later line replaces it\nexcludepkgs=kernel*\n")
	// Read as dnf reads them: an indented line continues the option before
	// it; [main] counts in dnf.conf only; a repository defined in an earlier
	// file (a.repo before pedos.repo) keeps that definition.
	write(NetworkReposDir+"/a.repo", "[main]\nexcludepkgs=everything*\n[pedos-current]\nbaseurl=http://mirror/current\nexcludepkgs = xen*,\n  grub2\n")
	write(NetworkReposDir+"/pedos.repo", `[pedos-current]
baseurl=http://mirror/other
excludepkgs = nothing-from-here
enabled = 0
[pedos-testing]
enabled=0
exclude=never-seen
[pedos-security]
enabled = 1
includepkgs=kernel-headers glibc*
`)
	// Neither a dot-file nor a link is shipped to the UpdateVM, so neither counts here.
	write(NetworkReposDir+"/.old.repo", "[old-leftover]\nbaseurl=http://mirror/old\n")
	write("/elsewhere/linked.repo", "[linked]\nbaseurl=http://mirror/linked\n")
	if err := os.Symlink(filepath.Join(root, "/elsewhere/linked.repo"), filepath.Join(root, NetworkReposDir+"/linked.repo")); err != nil {
		t.Fatal(err)
	}
	on := func(glob string) RepoSwitch { return RepoSwitch{Enable: true, Glob: glob} }
	off := func(glob string) RepoSwitch { return RepoSwitch{Glob: glob} }
	for _, tc := range []struct {
		name     string
		switches []RepoSwitch
		enabled  []string
		excludes map[string][]string // each enabled repository's own; dnf.conf's kernel* always
	}{
		{"as configured", nil, []string{"pedos-current", "pedos-security"},
			map[string][]string{"pedos-current": {"xen*", "grub2"}, "pedos-security": nil}},
		{"--enablerepo", []RepoSwitch{on("pedos-test*")}, []string{"pedos-current", "pedos-security", "pedos-testing"},
			map[string][]string{"pedos-current": {"xen*", "grub2"}, "pedos-security": nil, "pedos-testing": {"never-seen"}}},
		{"--disablerepo", []RepoSwitch{off("pedos-current,pedos-security")}, nil, map[string][]string{}},
		// dnf applies the switches in their order: the last one that matches a repository wins.
		{"enable all, then disable one", []RepoSwitch{on("*"), off("pedos-testing")}, []string{"pedos-current", "pedos-security"},
			map[string][]string{"pedos-current": {"xen*", "grub2"}, "pedos-security": nil}},
		{"disable all, then enable one", []RepoSwitch{off("*"), on("pedos-security")}, []string{"pedos-security"},
			map[string][]string{"pedos-security": nil}},
	} {
		got, _, err := ReadNetworkRepos(root, tc.switches)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Enabled, tc.enabled) || !slices.Equal(got.Excludes, []string{"kernel*"}) || !maps.EqualFunc(got.RepoExcludes, tc.excludes, slices.Equal) {
			t.Errorf("%s: %+v, want enabled %v, excludes [kernel*], per repository %v", tc.name, got, tc.enabled, tc.excludes)
		}
		if in := got.RepoIncludes["pedos-security"]; slices.Contains(tc.enabled, "pedos-security") != slices.Equal(in, []string{"kernel-headers", "glibc*"}) || got.Includes != nil {
			t.Errorf("%s: includes %v and per repository %v, want pedos-security's kernel-headers glibc* when enabled", tc.name, got.Includes, got.RepoIncludes)
		}
	}
}

// More of dnf's reading (measured with dnf 4.14): .repo files in the order
// of their names without ".repo" (a.repo before a-b.repo: the first
// definition of an id counts); a section repeated in one file merges;
// disable_excludes turns lists off; repository globs are Python's fnmatch,
// where "[!x]" negates and "[^x]" does not.
func TestReadNetworkReposAsDNF(t *testing.T) {
	root := t.TempDir()
	writeBelow(t, root, "/etc/dnf/dnf.conf", "[main]\nexcludepkgs=kernel*\ndisable_excludes=r2\n")
	writeBelow(t, root, NetworkReposDir+"/a.repo", "[r1]\nexcludepkgs=from-a\n[r2]\nexcludepkgs=off\n[r1]\nincludepkgs=also-from-a\n")
	writeBelow(t, root, NetworkReposDir+"/a-b.repo", "[r1]\nexcludepkgs=from-a-b\nenabled=0\n[r3]\nenabled=0\n  continued\n")
	// dnf's false is 0, false, no or off, in any case.
	writeBelow(t, root, NetworkReposDir+"/z.repo", "[r4]\nenabled=off\n[r5]\nenabled=No\n[r6]\nenabled=FALSE\n")
	got, _, err := ReadNetworkRepos(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Enabled, []string{"r1", "r2", "r3"}) || !slices.Equal(got.RepoExcludes["r1"], []string{"from-a"}) ||
		!slices.Equal(got.RepoIncludes["r1"], []string{"also-from-a"}) || got.RepoExcludes["r2"] != nil || !slices.Equal(got.Excludes, []string{"kernel*"}) {
		t.Errorf("%+v: want r1 from a.repo (excludes from-a, includes also-from-a), r2 without its excludes, r3 enabled (enabled=0 continued is no boolean), not r4-r6, main's kernel*", got)
	}
	writeBelow(t, root, "/etc/dnf/dnf.conf", "[main]\nexcludepkgs=kernel*\ndisable_excludes=all\n")
	if got, _, err := ReadNetworkRepos(root, nil); err != nil || got.Excludes != nil || got.RepoExcludes["r1"] != nil || got.RepoIncludes["r1"] != nil {
		t.Errorf("disable_excludes=all: %+v, %v; want no lists", got, err)
	}
	// main turns off dnf.conf's own lists only.
	writeBelow(t, root, "/etc/dnf/dnf.conf", "[main]\nexcludepkgs=kernel*\ndisable_excludes=main\n")
	if got, _, err := ReadNetworkRepos(root, nil); err != nil || got.Excludes != nil || !slices.Equal(got.RepoExcludes["r1"], []string{"from-a"}) {
		t.Errorf("disable_excludes=main: %+v, %v; want no main list, r1's from-a", got, err)
	}
	for glob, want := range map[string][]string{"[!x]*": nil, "[^x]*": {"r1", "r2", "r3"}} {
		if got, _, err := ReadNetworkRepos(root, []RepoSwitch{{Glob: glob}}); err != nil || !slices.Equal(got.Enabled, want) {
			t.Errorf("--disablerepo=%s: enabled %v, %v; want %v", glob, got.Enabled, err, want)
		}
	}
}

// priority= as dnf 4.14 takes it (measured with its Python API): a C++
// stream's integer, so leading blanks skipped, a sign and digits, the rest
// ignored; no digits, or outside 32 bits, keeps the default 99 with a
// warning; a value continued on the next line is its first line's number;
// the definition of the first file counts; [main] has none; only enabled
// repositories are listed; another option's continuation line is no
// priority. -2147483648 ranks last in libsolv (its negation overflows),
// after 2147483647.
func TestReadNetworkReposPriorities(t *testing.T) {
	root := t.TempDir()
	writeBelow(t, root, "/etc/dnf/dnf.conf", "[main]\npriority=5\n")
	writeBelow(t, root, NetworkReposDir+"/a.repo", "[hi]\npriority=1 # distribution first\n[neg]\npriority = -5\n[bad]\npriority=abc\n"+
		"[cont]\npriority=3\n  4\n[off]\nenabled=0\npriority=2\n[hex]\npriority=0x10\n[frac]\npriority=1.5\n[big]\npriority=2147483648\n[plus]\npriority=+05\n[late]\npriority=\n  7\n"+
		"[lowest]\npriority=-2147483648\n[nine]\npriority=90\n[other]\nincludepkgs=a\n  9\n")
	writeBelow(t, root, NetworkReposDir+"/b.repo", "[hi]\npriority=50\n[plain]\nbaseurl=http://mirror/p\n")
	got, warnings, err := ReadNetworkRepos(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"hi": 1, "neg": -5, "bad": 99, "cont": 3, "plain": 99, "off": 99, "hex": 0, "frac": 1, "big": 99, "plus": 5, "late": 7, "lowest": 2147483648,
		"nine": 90, "other": 99}
	for id, p := range want {
		if got.Priority(id) != p {
			t.Errorf("repository %s: priority %d, want %d (%v)", id, got.Priority(id), p, got.RepoPriorities)
		}
	}
	for _, id := range []string{"bad", "big"} {
		if !slices.ContainsFunc(warnings, func(w string) bool { return strings.HasPrefix(w, "repository "+id+": priority") }) {
			t.Errorf("warnings %q: none names %s's priority", warnings, id)
		}
	}
	if len(warnings) != 2 {
		t.Errorf("warnings %q, want two", warnings)
	}
}

// What dnf 4.14 skips with a warning (measured with dnf repolist) is skipped
// here and named: a .repo file with a line that is no option, section,
// comment or continuation, whole; a repository id with other characters
// than letters, digits and -_.:. In dnf.conf such a line is an error.
func TestReadNetworkReposSkipsWhatDNFSkips(t *testing.T) {
	root := t.TempDir()
	writeBelow(t, root, NetworkReposDir+"/a.repo", "[good]\nbaseurl=http://mirror/x\n[alsogood]\nbaseurl: http://mirror/y\n")
	writeBelow(t, root, NetworkReposDir+"/b.repo", "[b1]\nbaseurl=http://mirror/z\n  continued\n[b2]\n=novalue\n")
	writeBelow(t, root, NetworkReposDir+"/b-c.repo", "[bc]\nbaseurl=http://mirror/bc\n[unclosed\nbaseurl=http://mirror/u\n")
	writeBelow(t, root, NetworkReposDir+"/c.repo", "[c:1-x_y.z]\nbaseurl=http://mirror/c\n[d+e]\nbaseurl=http://mirror/d\n[ spaced ]\nbaseurl=http://mirror/s\n[p\x1b[31m]\nbaseurl=http://mirror/p\n")
	got, warnings, err := ReadNetworkRepos(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Enabled, []string{"c:1-x_y.z"}) {
		t.Errorf("enabled %v, want only c:1-x_y.z", got.Enabled)
	}
	want := []string{"a.repo:4: not an option", "b.repo:5: not an option", "b-c.repo:3: not an option", `repository id "d+e": dnf skips this repository`, `repository id " spaced ": dnf skips this repository`,
		`repository id "p\x1b[31m": dnf skips this repository`}
	for _, w := range want {
		if !slices.ContainsFunc(warnings, func(got string) bool { return strings.Contains(got, w) }) {
			t.Errorf("warnings %q: none says %q", warnings, w)
		}
	}
	for _, conf := range []string{"[main]\ngpgcheck\n", "[main]\n  gpgcheck=1\n"} {
		writeBelow(t, root, "/etc/dnf/dnf.conf", conf)
		if _, _, err := ReadNetworkRepos(root, nil); err == nil || !strings.Contains(err.Error(), "dnf.conf:2") {
			t.Errorf("dnf.conf with a bad line (%q): %v, want an error naming dnf.conf:2", conf, err)
		}
	}
}

// Lines as libdnf reads them (measured with dnf 4.14's Python API, repos'
// excludepkgs): an indented line continues the option before it, a # or ;
// there too; a line of blanks changes nothing; an empty line or a comment
// ends what an indented line may continue, and after it, or after a section,
// an indented line makes dnf skip the file; a section may be indented; only
// spaces, tabs and a CR are trimmed.
func TestReadRepoFileLinesAsDNF(t *testing.T) {
	for _, tc := range []struct {
		text     string
		excludes map[string][]string // nil: the file is skipped
	}{
		{"[r1]\nexcludepkgs=foo\n  # c\n   \n  bar\n", map[string][]string{"r1": {"foo", "#", "c", "bar"}}},
		{"[r1]\nexcludepkgs=foo\n  ; c\n", map[string][]string{"r1": {"foo", ";", "c"}}},
		{"[r1]\nexcludepkgs=foo\n\t\n\tbar\n", map[string][]string{"r1": {"foo", "bar"}}},
		{"[r1]\n   \nexcludepkgs=foo\n", map[string][]string{"r1": {"foo"}}},
		{"[r1]\nexcludepkgs=foo\n  [r2]\nexcludepkgs=x\n", map[string][]string{"r1": {"foo"}, "r2": {"x"}}},
		{"[r1]\nexcludepkgs=foo\n\n  [r2]\nexcludepkgs=x\n", map[string][]string{"r1": {"foo"}, "r2": {"x"}}},
		{"[r1]\r\nexcludepkgs=foo\r\n", map[string][]string{"r1": {"foo"}}},
		{"[r1]\nexcludepkgs=foo\n\vexcludepkgs=bar\n", map[string][]string{"r1": {"foo"}}},
		{"[r1]\nexcludepkgs=foo\n\n  bar\n", nil},
		{"[r1]\nexcludepkgs=foo\n# note\n  bar\n", nil},
		{"[r1]\nexcludepkgs=foo\n\n  # c\n", nil},
		{"[r1]\n   \n  excludepkgs=x\n", nil},
		{"[r1]\nexcludepkgs=foo\n\f\n  bar\n", nil},
	} {
		root := t.TempDir()
		writeBelow(t, root, NetworkReposDir+"/t.repo", tc.text)
		got, warnings, err := ReadNetworkRepos(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		excludes := map[string][]string{}
		for _, id := range got.Enabled {
			excludes[id] = got.RepoExcludes[id]
		}
		if tc.excludes == nil && (len(got.Enabled) != 0 || len(warnings) != 1) {
			t.Errorf("%q: enabled %v, warnings %q; want the file skipped, with a warning", tc.text, got.Enabled, warnings)
		}
		if tc.excludes != nil && !maps.EqualFunc(excludes, tc.excludes, slices.Equal) {
			t.Errorf("%q: excludes %q, want %q", tc.text, excludes, tc.excludes)
		}
	}
}
