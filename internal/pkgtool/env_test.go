package pkgtool_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/testrepo"
)

// standIn puts an executable script named name first on the PATH.
func standIn(t *testing.T, name, script string) {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

// verify.md §1: rpmkeys is "run with LC_ALL=C, an empty environment
// otherwise"; real-tools.md: every rpm tool gets a private HOME whose
// .rpmmacros fixes Debian's defaults. The environment the tool was started
// with is exactly LC_ALL, PATH and HOME, whatever the caller's holds, and
// HOME and its .rpmmacros are writable by root alone (rpm macros can run
// commands: a macro file another user could change would run them as root).
func TestToolsRunInACleanPrivateEnvironment(t *testing.T) {
	need(t, "rpmkeys")
	seen := filepath.Join(t.TempDir(), "seen")
	standIn(t, "rpmkeys", `tr '\0' '\n' </proc/$$/environ >`+seen+`.env
stat -c '%a' "$HOME" "$HOME/.rpmmacros" >`+seen+`.modes
cat "$HOME/.rpmmacros" >`+seen+`.macros
exit 0
`)
	t.Setenv("LANG", "de_DE.UTF-8")
	t.Setenv("RPM_CONFIGDIR", "/tmp/evil")
	checker, _, err := pkgtool.NewRPMKeys(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer checker.Close()
	checker.CheckBatch(context.Background(), []string{filepath.Join(t.TempDir(), "a-1-1.noarch.rpm")})
	read := func(suffix string) string {
		b, err := os.ReadFile(seen + suffix)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var names []string
	for _, kv := range strings.Fields(read(".env")) {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	slices.Sort(names)
	if got := strings.Join(names, " "); got != "HOME LC_ALL PATH" {
		t.Errorf("rpmkeys ran with the variables %s, want exactly HOME LC_ALL PATH", got)
	}
	if env := read(".env"); !strings.Contains(env, "LC_ALL=C\n") || !strings.Contains(env, "PATH=/usr/bin:/bin:/usr/sbin:/sbin\n") {
		t.Errorf("rpmkeys ran with\n%s\nwant LC_ALL=C and the fixed PATH", env)
	}
	if modes := strings.Fields(read(".modes")); !slices.Equal(modes, []string{"700", "600"}) {
		t.Errorf("HOME and .rpmmacros have modes %v, want 700 and 600", modes)
	}
	if macros := read(".macros"); !strings.Contains(macros, "%_dbpath /var/lib/rpm\n") || !strings.Contains(macros, "%__gpg /usr/bin/gpg\n") {
		t.Errorf(".rpmmacros holds %q", macros)
	}
}

// verify.md §1 "Keys": a key file that fails is skipped with a warning
// naming it; the other keys still load. rpm refusing to import one is such
// a failure, and must not pass in silence.
func TestRPMKeysImportRefusalIsAWarning(t *testing.T) {
	signer, _, _ := setup(t)
	dir := t.TempDir()
	good, err := signer.WritePublicKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "RPM-GPG-KEY-garbage")
	if err := os.WriteFile(bad, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	checker, warnings, err := pkgtool.NewRPMKeys(context.Background(), t.TempDir(), []string{bad, good})
	if err != nil {
		t.Fatal(err)
	}
	defer checker.Close()
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), bad) {
		t.Errorf("warnings %v, want one naming %s", warnings, bad)
	}
}

// A private directory that cannot be made is an error (not a HOME in the
// current directory).
func TestPrivateDirectoryErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if c, _, err := pkgtool.NewRPMKeys(context.Background(), missing, nil); err == nil {
		c.Close()
		t.Error("NewRPMKeys below a missing directory succeeded")
	}
	if tools, err := pkgtool.NewTools(missing); err == nil {
		tools.Close()
		t.Error("NewTools below a missing directory succeeded")
	}
}

// CheckParallel asked for no runs still checks every file (in one run).
func TestCheckParallelZeroRuns(t *testing.T) {
	signer, _, checker := setup(t)
	dir := t.TempDir()
	var files []string
	for _, name := range []string{"a", "b"} {
		f, err := testrepo.WriteFile(dir, testrepo.Package{Name: name, Version: "1", Release: "1"}, signer)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	verdicts := checker.CheckParallel(context.Background(), files, 0)
	for _, f := range files {
		if err, ok := verdicts[f]; !ok || err != nil {
			t.Errorf("%s: %v (verdict given: %t), want accepted", filepath.Base(f), err, ok)
		}
	}
}

// rpmkeys prints each file's name as given, and CheckBatch reads its
// verdicts by line (verify.md §1: accepted only on exactly "FILE: digests
// signatures OK"). A name holding a newline could print a forged line for
// another file of the same run: such a name is refused before rpmkeys runs.
func TestCheckBatchRefusesANameThatForgesALine(t *testing.T) {
	checker, dir, good, unsigned := goodAndUnsigned(t)
	// A signed package whose name ends in a line for the unsigned one.
	forger := filepath.Join(dir, "x\n"+unsigned)
	if err := os.MkdirAll(filepath.Dir(forger), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(good, forger); err != nil {
		t.Fatal(err)
	}
	verdicts := checker.CheckBatch(context.Background(), []string{forger, unsigned})
	if !errors.Is(verdicts[unsigned], pkgtool.ErrRPMKeysRejected) {
		t.Errorf("the unsigned package: %v, want a rejection", verdicts[unsigned])
	}
	if !errors.Is(verdicts[forger], pkgtool.ErrRPMKeysRejected) {
		t.Errorf("the name with a newline: %v, want a rejection", verdicts[forger])
	}
}
