package frontend

import (
	"errors"
	"reflect"
	"testing"
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
		{"dnf options pass through", []string{"-y", "--best", "--allowerasing", "--exclude=kernel*,xen"},
			Options{Action: "upgrade", AssumeYes: true, Excludes: []string{"kernel*", "xen"},
				DNFOptions: []string{"--best", "--allowerasing", "--exclude=kernel*,xen"}}},
		{"after -- everything is for dnf", []string{"--", "hello"},
			Options{Action: "install", Packages: []string{"hello"}}},
		{"repos are forwarded", []string{"--enablerepo=testing", "--disablerepo=main"},
			Options{Action: "upgrade", EnableRepos: []string{"testing"}, DisableRepos: []string{"main"}}},
		{"compatibility no-ops", []string{"--console", "--show-output", "--gui", "--force-xen-upgrade", "--preserve-terminal"},
			Options{Action: "upgrade"}},
		{"check only", []string{"--check-only"}, Options{Action: "upgrade", CheckOnly: true}},
		{"our options", []string{"--json", "--clean", "--downloadonly", "--root", "/lab/dom0"},
			Options{Action: "upgrade", JSON: true, Clean: true, DownloadOnly: true, Root: "/lab/dom0"}},
		{"downgrade with consent", []string{"--action=downgrade", "--allow-downgrade", "hello"},
			Options{Action: "downgrade", AllowDowngrade: true, Packages: []string{"hello"}}},
		{"help", []string{"--help"}, Options{Help: true}},
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

func TestParseArgsUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--action=frobnicate"},
		{"--action=remove"},
		{"--action=downgrade", "hello"},
		{"--check-only", "--downloadonly"},
		{"--check-only", "--action=install", "x"},
		{"hello;reboot"},
		{"$(id)"},
		{"--exclude=a b"},
		{"--enablerepo=x`y`"},
		{"--root"},
	} {
		if _, err := ParseArgs(args); !errors.Is(err, ErrUsage) {
			t.Errorf("ParseArgs(%q) = %v, want a usage error", args, err)
		}
	}
}
