package dnftool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
)

// rpmdbTools are Tools for a test that needs the real rpmdb, closed when
// it ends.
func rpmdbTools(t *testing.T) Tools {
	t.Helper()
	if _, err := exec.LookPath("rpmdb"); err != nil {
		t.Skip("rpmdb not installed")
	}
	tools, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tools.Close() })
	return tools
}

// A root without an rpm database is an error naming where the database
// should be, and nothing is made there: the real rpmdb would create an
// empty database in it and export that, so that the UpdateVM would find
// "no updates" for a mistyped installroot.
func TestExportRPMDBNeedsADatabase(t *testing.T) {
	tools := rpmdbTools(t)

	typo := filepath.Join(t.TempDir(), "typo")
	err := tools.ExportRPMDB(typo, io.Discard)
	if want := "no rpm database in " + filepath.Join(typo, "var/lib/rpm"); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ExportRPMDB(%s) = %v, want an error saying %q", typo, err, want)
	}
	if _, err := os.Lstat(typo); !os.IsNotExist(err) {
		t.Errorf("%s was made (%v)", typo, err)
	}

	// A root with a database, even an empty one, exports.
	root := t.TempDir()
	if err := tools.Run(context.Background(), "rpmdb --initdb", nil, io.Discard, "rpmdb", "--root", root, "--initdb"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tools.ExportRPMDB(root, &out); err != nil {
		t.Errorf("ExportRPMDB of an initialised database: %v", err)
	}
}

// installed lists root's packages as rpm -qa does, sorted.
func installed(t *testing.T, tools Tools, root string) []string {
	t.Helper()
	var out strings.Builder
	if err := tools.Run(context.Background(), "rpm -qa", nil, &out, "rpm", "--root", root, "-qa", "--qf", "%{NEVRA}\n"); err != nil {
		t.Fatal(err)
	}
	list := strings.Fields(out.String())
	slices.Sort(list)
	return list
}

// newRoot makes an rpm database in a new root holding the packages, entered
// with --justdb (only the database matters here).
func newRoot(t *testing.T, tools Tools, packages ...testrepo.Package) string {
	t.Helper()
	root := t.TempDir()
	if err := tools.Run(context.Background(), "rpmdb --initdb", nil, io.Discard, "rpmdb", "--root", root, "--initdb"); err != nil {
		t.Fatal(err)
	}
	for _, p := range packages {
		file, err := testrepo.WriteFile(t.TempDir(), p)
		if err != nil {
			t.Fatal(err)
		}
		if err := tools.Run(context.Background(), "rpm -i --justdb", nil, io.Discard, "rpm", "--root", root, "-i", "--justdb", "--nodeps", "--nosignature", "--nodigest", file); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// The UpdateVM's copy of dom0's rpm database is replaced, not merged into: a
// package dom0 removed since the last sync must not stay "installed" there,
// where dnf would resolve updates and dependencies against it (overview.md
// step 2).
func TestImportRPMDBReplaces(t *testing.T) {
	tools := rpmdbTools(t)
	dom0 := newRoot(t, tools, testrepo.Package{Name: "hello", Version: "2.0", Release: "1"})
	updateVM := newRoot(t, tools, testrepo.Package{Name: "removed", Version: "1.0", Release: "1"}, testrepo.Package{Name: "hello", Version: "1.0", Release: "1"})
	export := exportOf(t, tools, dom0)
	if err := tools.ImportRPMDB(updateVM, export); err != nil {
		t.Fatal(err)
	}
	if got, want := installed(t, tools, updateVM), []string{"hello-2.0-1.noarch"}; !slices.Equal(got, want) {
		t.Errorf("after the import: %q, want dom0's %q only", got, want)
	}
}

// WhatProvides names the installed providers of a capability, the package
// itself for its own name, and none (no error) for what nothing provides.
func TestWhatProvides(t *testing.T) {
	tools := rpmdbTools(t)
	root := newRoot(t, tools, testrepo.Package{Name: "libbar", Version: "1.0", Release: "1", Provides: []string{"barcap"}},
		testrepo.Package{Name: "other", Version: "1.0", Release: "1"})
	for capability, want := range map[string][]string{"barcap": {"libbar"}, "libbar": {"libbar"}, "nothing-has-it": nil, "/usr/bin/nothere": nil} {
		got, err := tools.WhatProvides(context.Background(), root, capability)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %q, %v; want %q", capability, got, err, want)
		}
	}
}

// exportOf writes root's rpm database in rpmdb --exportdb form to a file.
func exportOf(t *testing.T, tools Tools, root string) string {
	t.Helper()
	export := filepath.Join(t.TempDir(), "rpmdb.hdr")
	f, err := os.Create(export)
	if err != nil {
		t.Fatal(err)
	}
	err = tools.ExportRPMDB(root, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return export
}

// ImportKeys imports every key it can and reports each one it cannot.
func TestImportKeysReportsEachFailure(t *testing.T) {
	if _, err := exec.LookPath("rpmkeys"); err != nil {
		t.Skip("rpmkeys not installed")
	}
	signer, err := testrepo.NewSigner(testrepo.KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := signer.WritePublicKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tools, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer tools.Close()
	root := newRoot(t, tools)
	missing := filepath.Join(t.TempDir(), "RPM-GPG-KEY-missing")
	err = ImportKeys(context.Background(), root, []string{missing, key})
	if err == nil || !strings.Contains(err.Error(), "rpmkeys --import "+missing) {
		t.Errorf("ImportKeys with a missing key file: %v, want an error naming it", err)
	}
	if got := installed(t, tools, root); len(got) != 1 || !strings.HasPrefix(got[0], "gpg-pubkey-") {
		t.Errorf("keys in the database: %q, want the one key that exists", got)
	}
}

// rpm 4.18's rpmdb --importdb exits 0 when sqlite runs out of room, leaving
// some of the packages: the import must fail, saying why, rather than let
// the UpdateVM resolve updates for part of dom0.
func TestImportRPMDBOnAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	tools := rpmdbTools(t)
	var pkgs []testrepo.Package
	for i := range 150 { // its database outgrows 1 MiB part way, past the tables' creation
		pkgs = append(pkgs, testrepo.Package{Name: fmt.Sprintf("pkg%03d", i), Version: "1.0", Release: "1"})
	}
	dom0 := newRoot(t, tools, pkgs...)
	export := exportOf(t, tools, dom0)
	updateVM := t.TempDir()
	small := filepath.Join(updateVM, "var")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	testbin.Tmpfs(t, small, "size=1m")
	err := tools.ImportRPMDB(updateVM, export)
	if err == nil || !strings.Contains(err.Error(), "rpmdb --importdb into "+updateVM) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("import into a full file system: %v, want an error saying it is full", err)
	}
	if _, err := os.Stat(filepath.Join(updateVM, "var", "lib", "rpm")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the half-imported database stays (%v)", err)
	}
}

// rpmdb's import killed without a word is named by its status alone, not
// with an empty reason after a colon; its own error line comes first.
func TestImportFailureWords(t *testing.T) {
	for _, c := range []struct {
		code   int
		stderr string
		want   string
	}{
		{137, "", "exit 137"},
		{1, "warning: x\nerror: cannot open Packages\n", "exit 1: error: cannot open Packages"},
		{0, "error: half done\n", "exit 0: error: half done"},
	} {
		if err := importFailure(c.code, c.stderr); err == nil || err.Error() != c.want {
			t.Errorf("importFailure(%d, %q) = %v, want %q", c.code, c.stderr, err, c.want)
		}
	}
	if err := importFailure(0, "warning: x\n"); err != nil {
		t.Errorf("a clean import: %v", err)
	}
}
