package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/updatecall"
	"pedos.dev/updates/internal/updatevm"
)

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// qrexec's failure and refusal of the delivery reach dom0 as 125 and 126.
func TestExitOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("dnf failed"), 1},
		{&updatevm.SendError{Program: "qrexec-client-vm", Code: 126}, 126},
		{&updatevm.SendError{Program: "qrexec-client-vm", Code: 125}, 125},
		{&updatevm.SendError{Program: "qrexec-client-vm", Code: 127}, 125},
		{&updatevm.SendError{Program: "qrexec-client-vm", Code: 2}, 1},
	} {
		if got, _ := exitOf(tc.err); got != tc.want {
			t.Errorf("exitOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// Options with a value take it after "=" or as the next word, as the
// usage text shows --root DIR.
func TestParse(t *testing.T) {
	id := "3f2a0c9d51e84b7a9c16d0e2f4a8b5e9"
	for _, args := range [][]string{
		{"--root", "/lab/vm", "--action", "upgrade", "--session", id, "--", "hello"},
		{"--root=/lab/vm", "--action=upgrade", "--session=" + id, "hello"},
		{"--root=/lab/vm", "--action=upgrade", "--session=" + id, "--action", "upgrade", "--session=" + id, "hello"},
	} {
		o, err := parse(args)
		if err != nil || o.root != "/lab/vm" || o.req.Action != "upgrade" || o.req.SessionID != id ||
			len(o.req.Packages) != 1 || o.req.Packages[0] != "hello" {
			t.Errorf("parse(%q) = %+v, %v", args, o, err)
		}
	}
	for _, args := range [][]string{{"--sync", "--root"}, {"--sync", "--root="}, {"--action", "--sync"}, {},
		// Two jobs at once: one would be done and the other dropped.
		{"--sync", "--check-only"}, {"--check-only", "--action=upgrade"}, {"--sync", "--action=upgrade"},
		// A dnf option's value after a space would be read as a package name.
		{"--action=upgrade", "--enablerepo", "testing"}, {"--action=upgrade", "--disablerepo", "updates"},
		{"--action=upgrade", "--exclude", "kernel"}, {"--check-only", "--excludepkgs", "kernel"},
		{"--check-only", "-x", "kernel"}, {"--check-only", "-xkernel"},
		// An option is no value: "--session --" would make "--" the session id.
		{"--action=upgrade", "--session", "--", "hello"}, {"--action", "--session=ab"}} {
		if _, err := parse(args); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
	// After "--" every word is a package; before it, a word beginning with
	// "-" is an option. A word after "--" that dnf would take for an option
	// (it has no "--" of its own) is a usage error.
	o, err := parse([]string{"--action=install", "--best", "--", "hello", "libfoo"})
	if err != nil || !slices.Equal(o.req.Packages, []string{"hello", "libfoo"}) || !slices.Equal(o.req.DNFOptions, []string{"--best"}) {
		t.Errorf("packages after --: %+v, %v", o.req, err)
	}
	for _, word := range []string{"--nogpgcheck", "-odd-name"} {
		if o, err := parse([]string{"--action=install", "--", "hello", word}); err == nil || !strings.Contains(err.Error(), word) {
			t.Errorf("%q after --: %+v, %v; want a usage error naming it", word, o.req, err)
		}
	}
	// The queries are actions too.
	for _, action := range updatecall.QueryActions {
		if o, err := parse([]string{"--action=" + action, "hello"}); err != nil || o.req.Action != action {
			t.Errorf("--action=%s: %+v, %v", action, o, err)
		}
	}
	// An unknown option is named as such when no mode would pass it to
	// dnf, and --sync, which runs no dnf, takes no dnf arguments.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, `unknown option "--bogus": options other than this command's own are passed to dnf, with --check-only or --action=ACT only`},
		{[]string{"--sync", "--bogus"}, `--sync runs no dnf: it takes no dnf options or packages ("--bogus")`},
		{[]string{"--sync", "hello"}, `--sync runs no dnf: it takes no dnf options or packages ("hello")`},
		{[]string{"--clean"}, "exactly one of --sync, --check-only or --action=ACT is needed"},
		// Found before dnf runs, let alone downloads.
		{[]string{"--action=install"}, "--action=install needs package names"},
		{[]string{"--action=upgrade", "--session=x;y"}, `--session "x;y" is not a session id: dom0 makes 32 lowercase hex digits`},
		{[]string{"--action=upgrade", "--session=" + strings.ToUpper(id)}, `--session "` + strings.ToUpper(id) + `" is not a session id`},
		{[]string{"--action=list", "--session=" + id}, "--session goes with a download"},
		// An empty value is none: an empty session would deliver nothing and exit 0.
		{[]string{"--action=upgrade", "--session="}, "--session needs a value"},
		{[]string{"--action="}, "--action needs a value"},
		{[]string{"--action=upgrade", "--session=" + id, "--session", strings.Repeat("0", 32)}, "--session is given twice, with different values"},
		{[]string{"--action=install", "--action=downgrade", "hello"}, "--action is given twice, with different values"},
		{[]string{"--root=/a", "--check-only", "--root", "/b"}, "--root is given twice, with different values"},
		{[]string{"--check-only", "--root="}, "--root needs a value"},
	} {
		if _, err := parse(c.args); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("parse(%q): %v, want %q", c.args, err, c.want)
		}
	}
	o, err = parse([]string{"--action=upgrade", "--disablerepo=*", "--enablerepo=testing"})
	if err != nil || len(o.req.RepoSwitches()) != 2 || o.req.RepoSwitches()[1].Glob != "testing" {
		t.Errorf("repository switches with =: %+v, %v", o.req.RepoSwitches(), err)
	}
}

// An action the UpdateVM does not carry out and a relative --root are usage
// errors (exit 2), not dnf's failures; a --root that does not exist is an
// error naming it, and is not made. The program runs in a directory of the
// test's, where a relative --root would land, never in the source tree.
func TestBadActionAndRoot(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent")
	regular := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	workDir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--root", t.TempDir(), "--action=frob", "hello"}, 2,
			`unknown action "frob": the UpdateVM downloads for upgrade, install, reinstall, downgrade, upgrade-to, and answers list, search, info`},
		{[]string{"--root", t.TempDir(), "--action", "remove", "hello"}, 2, `unknown action "remove"`},
		{[]string{"--root=lab/vm", "--check-only"}, 2, `--root needs an absolute directory, not "lab/vm"`},
		{[]string{"--root", missing, "--check-only"}, 1, "the fake installroot " + missing + " is not an existing directory"},
		{[]string{"--root", missing, "--sync"}, 1, "the fake installroot " + missing + " is not an existing directory"},
		{[]string{"--root", regular, "--check-only"}, 1, "the fake installroot " + regular + " is not an existing directory"},
	} {
		cmd := exec.Command(testbin.Path(t, "pedos-download-dom0-updates"), tc.args...)
		cmd.Stdin, cmd.Dir = strings.NewReader(""), workDir
		out, _ := cmd.CombinedOutput()
		hint := strings.HasSuffix(string(out), "\nTry 'pedos-download-dom0-updates --help'.\n")
		if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "dnf") || hint != (code == 2) {
			t.Errorf("%q: exit %d, want %d saying %q:\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
	if _, err := os.Lstat(missing); !os.IsNotExist(err) {
		t.Errorf("%s was made (%v)", missing, err)
	}
	if made, _ := os.ReadDir(workDir); len(made) != 0 {
		t.Errorf("the relative --root was made: %v", made)
	}
}
