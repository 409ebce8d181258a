package frontend

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"pedos.dev/updates/internal/dnfconf"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want Options
	}{
		{"no arguments upgrades everything", nil, Options{Action: "upgrade"}},
		{"package names install", []string{"hello", "libfoo"},
			Options{Action: "install", Packages: []string{"hello", "libfoo"}}},
		{"explicit action", []string{"--action=reinstall", "hello"},
			Options{Action: "reinstall", Packages: []string{"hello"}}},
		{"update is upgrade", []string{"--action=update"}, Options{Action: "upgrade"}},
		{"upgrade-to is upgrade", []string{"--action=upgrade-to", "hello-1.2"}, Options{Action: "upgrade", Packages: []string{"hello-1.2"}}},
		{"dnf options pass through", []string{"-y", "--best", "--allowerasing", "--exclude=kernel*,xen"},
			Options{Action: "upgrade", AssumeYes: true, Excludes: []string{"kernel*", "xen"},
				DNFOptions: []string{"--best", "--allowerasing", "--exclude=kernel*,xen"}}},
		{"after -- everything is for dnf", []string{"--", "hello"},
			Options{Action: "install", Packages: []string{"hello"}}},
		{"dnf options after --", []string{"--", "--best"},
			Options{Action: "upgrade", DNFOptions: []string{"--best"}}},
		{"dnf options and packages after --", []string{"-y", "--", "-y", "--best", "hello", "-x", "kernel"},
			Options{Action: "install", AssumeYes: true, Packages: []string{"hello"}, Excludes: []string{"kernel"},
				DNFOptions: []string{"--best", "--exclude=kernel"}}},
		{"values after a space", []string{"--exclude", "kernel", "--enablerepo", "testing", "--disablerepo", "main"},
			Options{Action: "upgrade", Excludes: []string{"kernel"}, DNFOptions: []string{"--exclude=kernel"},
				RepoSwitches: []dnfconf.RepoSwitch{{Enable: true, Glob: "testing"}, {Glob: "main"}}}},
		{"-x bundled with its pattern, as dnf takes it", []string{"-xkernel*", "-x", "xen", "-x=grub2"},
			Options{Action: "upgrade", Excludes: []string{"kernel*", "xen", "grub2"},
				DNFOptions: []string{"--exclude=kernel*", "--exclude=xen", "--exclude=grub2"}}},
		{"release version for both sides", []string{"--releasever=42", "--", "--releasever", "43"},
			Options{Action: "upgrade", ReleaseVer: "43"}},
		{"action after a space", []string{"--action", "install", "hello"},
			Options{Action: "install", Packages: []string{"hello"}}},
		// The same action twice is no conflict (a wrapper that adds its own).
		{"the same action twice", []string{"--action=install", "--action", "install", "hello"},
			Options{Action: "install", Packages: []string{"hello"}}},
		{"provides", []string{"pkgconfig(glib-2.0)", "perl(Foo::Bar)", "/usr/bin/hello"},
			Options{Action: "install", Packages: []string{"pkgconfig(glib-2.0)", "perl(Foo::Bar)", "/usr/bin/hello"}}},
		{"repos are forwarded in their order", []string{"--disablerepo=*", "--enablerepo=testing", "--disablerepo=main"},
			Options{Action: "upgrade", RepoSwitches: []dnfconf.RepoSwitch{{Glob: "*"}, {Enable: true, Glob: "testing"}, {Glob: "main"}}}},
		{"compatibility no-ops", []string{"--console", "--show-output", "--gui", "--force-xen-upgrade", "--preserve-terminal", "--refresh", "--", "--refresh"},
			Options{Action: "upgrade"}},
		{"check only", []string{"--check-only"}, Options{Action: "upgrade", CheckOnly: true}},
		{"info on every package, as list", []string{"--action=info"}, Options{Action: "info"}},
		// dom0's dnf only: the UpdateVM's would answer its own download no.
		{"assumeno", []string{"--assumeno", "--best"}, Options{Action: "upgrade", AssumeNo: true, DNFOptions: []string{"--best"}}},
		{"our options", []string{"--json", "--clean", "--downloadonly", "--root", "/lab/dom0"},
			Options{Action: "upgrade", JSON: true, Clean: true, DownloadOnly: true, Root: "/lab/dom0"}},
		{"downgrade with consent", []string{"--action=downgrade", "--allow-downgrade", "hello"},
			Options{Action: "downgrade", AllowDowngrade: true, Packages: []string{"hello"}}},
		{"help", []string{"--help"}, Options{Help: true}},
		{"version", []string{"--version"}, Options{Version: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseArgs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseArgs(%q)\n got %+v\nwant %+v", tc.args, got, tc.want)
			}
		})
	}
}

// A usage error about a value names its option.
func TestParseArgsNamesTheOption(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--enablerepo="}, "--enablerepo needs a repository id or glob"},
		{[]string{"--disablerepo", ""}, "--disablerepo needs a repository id or glob"},
		{[]string{"--enablerepo=x`y`"}, "\"--enablerepo=x`y`\" cannot be passed to dnf"},
		{[]string{"--exclude=a b"}, "\"--exclude=a b\" cannot be passed to dnf"},
	} {
		if _, err := ParseArgs(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseArgs(%q): %v, want %q", c.args, err, c.want)
		}
	}
}

func TestParseArgsUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--action=frobnicate"},
		{"--action=remove"},
		{"--action=downgrade", "hello"},
		{"--allow-downgrade"},
		{"--action=install", "--allow-downgrade", "hello"},
		{"--check-only", "--allow-downgrade"},
		{"--check-only", "--downloadonly"},
		{"--check-only", "--action=install", "x"},
		{"hello;reboot"},
		{"$(id)"},
		{"--exclude=a b"},
		{"--enablerepo=x`y`"},
		{"--root"},
		{"--root="},
		// An empty action is no request for the default one (upgrade).
		{"--action="},
		{"--action", ""},
		// What would make dom0's dnf skip signatures or read other
		// repositories, however spelled (dnf takes abbreviations and
		// bundled short options), and before or after --.
		{"--nogpgcheck"},
		{"--nogpg"},
		{"--setopt=gpgcheck=0"},
		{"--setopt", "reposdir=/etc/yum.repos.d"},
		{"--repofrompath=evil,/tmp/evil"},
		{"-yc/etc/evil.conf"},
		{"--", "--nogpgcheck"},
		{"--", "--setopt", "gpgcheck=0"},
		// Package files and URLs would be installed as they are, around the
		// cached repository and both verifiers.
		{"--action=install", "/tmp/evil-1-1.noarch.rpm"},
		{"evil-1-1.noarch.rpm"},
		{"--action=install", "https://example.invalid/x"},
		{"--", "/tmp/evil.rpm"},
		// Our options are not dnf's.
		{"--", "--json"},
		{"--", "--version"},
		{"--best=yes"},
		// A value option never takes the next option as its value.
		{"--exclude"},
		{"--exclude", "--best"},
		{"--enablerepo", "-y"},
		{"-x"},
		// dnf takes an empty exclude as "none", dropping dnf.conf's too.
		{"--exclude="},
		// $releasever goes into the UpdateVM's repository URLs and paths.
		{"--releasever=../x"},
		// dnf search needs a word to look for.
		{"--action=search"},
		{"--releasever="},
		{"--exclude", ""},
		{"-x", ","},
		{"--excludepkgs=kernel,"},
		// Nothing is ignored.
		{"--action=remove", "--downloadonly", "hello"},
		{"--action=remove", "--clean", "hello"},
		{"--action=remove", "--enablerepo=testing", "hello"},
		{"--action=remove", "--disablerepo=*", "hello"},
		{"--action=list", "--downloadonly"},
		// Only the actions pedos-dom0-update knows reach dom0's dnf as its
		// verb, with package names or without.
		{"--action=frobnicate", "hello"},
		{"--action=config-manager", "hello"},
		// A word longer than 256 bytes never travels to the UpdateVM.
		{strings.Repeat("p", 257)},
		// After "--" a second "--" is no package and no option.
		{"--", "hello", "--", "world"},
		// Two actions: not "the last one wins" (one may remove packages).
		{"--action", "install", "--action=remove", "big2"},
		{"--action=upgrade", "--action=downgrade", "--allow-downgrade", "hello"},
		// Contradictions dnf would resolve, or refuse, only in the UpdateVM.
		{"--best", "--nobest"},
		{"-b", "--", "--nobest"},
		{"-y", "--assumeno"},
		{"--assumeno", "--", "--assumeyes"},
		// --assumeno where dom0's dnf does not run.
		{"--assumeno", "--downloadonly"},
		{"--assumeno", "--check-only"},
		{"--assumeno", "--action=list"},
	} {
		if _, err := ParseArgs(args); !errors.Is(err, ErrUsage) {
			t.Errorf("ParseArgs(%q) = %v, want a usage error", args, err)
		}
	}
}

// Our own options after "--" are told where they go; dnf's others are not
// ours at all.
func TestParseArgsOwnOptionAfterTheEnd(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--", "--action=install", "hello"}, `"--action=install" is an option of pedos-dom0-update's own: put it before "--"`},
		{[]string{"--", "--json"}, `"--json" is an option of pedos-dom0-update's own`},
		{[]string{"--", "--action", "install", "hello"}, `"--action" is an option of pedos-dom0-update's own`},
		{[]string{"--", "--root=rel"}, `"--root=rel" is an option of pedos-dom0-update's own`},
		{[]string{"--", "--console"}, `"--console" is an option of pedos-dom0-update's own`},
		{[]string{"--", "--nogpgcheck"}, `"--nogpgcheck" is not an option pedos-dom0-update takes or passes to dnf`},
		{[]string{"--", "hello", "--"}, `"--" is not an option`},
	} {
		if _, err := ParseArgs(c.args); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseArgs(%q) = %v, want a usage error saying %q", c.args, err, c.want)
		}
	}
}

// forwardable takes words up to 256 bytes: the longest is still a package
// name (TestParseArgsUsageErrors refuses one byte more).
func TestForwardableLimit(t *testing.T) {
	if !forwardable(strings.Repeat("p", 256)) || forwardable(strings.Repeat("p", 257)) {
		t.Error("forwardable does not take exactly 256 bytes")
	}
}

// A usage error is logged below the root the command line names, wherever
// the error is on the line (main loads the configuration of o.Root); a
// --root without a value names none, and the error is not logged.
func TestParseArgsRootDespiteAnError(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		root    string
		missing bool
	}{
		{[]string{"--bogus", "--root", "/lab/dom0"}, "/lab/dom0", false},
		{[]string{"--bogus", "--root=/lab/dom0"}, "/lab/dom0", false},
		{[]string{"--root", "/lab/a", "--nogpgcheck", "--root=/lab/b"}, "/lab/b", false},
		{[]string{"--bogus", "--root"}, "", true},
		{[]string{"--root", "--json", "--bogus"}, "", true},
		{[]string{"--root=/lab/a", "--bogus", "--root="}, "", true},
		{[]string{"--bogus", "--", "--root", "/lab/dom0"}, "", false}, // dnf's part
	} {
		o, err := ParseArgs(tc.args)
		if !errors.Is(err, ErrUsage) || o.Root != tc.root || o.RootMissing != tc.missing {
			t.Errorf("ParseArgs(%q): Root %q, RootMissing %v, %v; want %q, %v and a usage error",
				tc.args, o.Root, o.RootMissing, err, tc.root, tc.missing)
		}
	}
}

// --check-only's usage errors name what the user gave: package names, an
// action, --downloadonly.
func TestParseArgsCheckOnlyMessages(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--check-only", "kernel"}, "--check-only asks whether any update for dom0 exists: it takes no package names"},
		{[]string{"--check-only", "--action=upgrade", "kernel"}, "it takes no package names"},
		{[]string{"--check-only", "--action=list"}, "it takes no --action"},
		{[]string{"--check-only", "--downloadonly"}, "it takes no --downloadonly"},
	} {
		if _, err := ParseArgs(tc.args); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseArgs(%q) = %v, want a usage error saying %q", tc.args, err, tc.want)
		}
	}
}

// An unknown action is no action: the report's "action" stays empty, as
// after any usage error found before the action was known; the message
// names what was given.
func TestParseArgsUnknownAction(t *testing.T) {
	o, err := ParseArgs([]string{"--json", "--action=bogus"})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), `unknown action "bogus"`) || o.Action != "" {
		t.Errorf("ParseArgs: action %q, %v; want no action and a usage error naming bogus", o.Action, err)
	}
}
