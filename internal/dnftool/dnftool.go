// Package dnftool runs the rpm tools that only the front end, the UpdateVM
// and the test set-ups need: dnf, rpmdb's export and import, and key
// imports into an installroot's rpm database. It is apart from pkgtool so
// that dom0's receive service, which needs none of them, does not link them
// (the trusted computing base, README).
package dnftool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"pedos.dev/updates/internal/pkgtool"
)

// Tools is pkgtool.Tools (its clean environment and private HOME) with
// dnf and rpmdb.
type Tools struct{ *pkgtool.Tools }

// New prepares the private HOME in a new directory below tmpDir ("": the
// system's); Close removes it.
func New(tmpDir string) (Tools, error) {
	t, err := pkgtool.NewTools(tmpDir)
	return Tools{t}, err
}

// DNF runs dnf. Callers pass --installroot, --config and reposdir
// (real-tools.md: without them dnf reads the host's repositories).
func (t Tools) DNF(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return t.Exec(ctx, 0, "dnf", args, stdin, stdout, stderr)
}

// ExportRPMDB writes root's rpm database in rpmdb --exportdb form. A root
// without one is an error: rpmdb would make an empty database there and
// export it, and the UpdateVM would resolve updates for a system with
// nothing installed ("No updates available").
func (t Tools) ExportRPMDB(root string, w io.Writer) error {
	if err := pkgtool.RequireRPMDB(root); err != nil {
		return err
	}
	return t.Run(context.Background(), "rpmdb --exportdb of "+root, nil, w, "rpmdb", "--root", root, "--exportdb")
}

// ImportRPMDB replaces root's rpm database with an export file. rpm 4.18
// exits 0 when sqlite fails part way (a full disk leaves a database
// holding some of the packages, and dnf would then resolve against it), so
// an "error:" line on its stderr fails the import too.
func (t Tools) ImportRPMDB(root, exportFile string) error {
	f, err := os.Open(exportFile)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.RemoveAll(filepath.Join(root, "var", "lib", "rpm")); err != nil {
		return err
	}
	var stderr strings.Builder
	code, err := t.Exec(context.Background(), 0, "rpmdb", []string{"--root", root, "--importdb"}, f, io.Discard, &stderr)
	if err == nil {
		err = importFailure(code, stderr.String())
	}
	if err != nil {
		// Nothing half imported stays for a later dnf run to resolve against.
		return errors.Join(fmt.Errorf("rpmdb --importdb into %s: %w", root, err), os.RemoveAll(filepath.Join(root, "var", "lib", "rpm")))
	}
	return nil
}

// importFailure says how rpmdb --importdb failed, if it did: its exit
// status, or else its first "error:" line.
func importFailure(code int, stderr string) error {
	first := ""
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, "error:") {
			first = strings.TrimSpace(line)
			break
		}
	}
	switch {
	case code != 0 && cmp.Or(first, strings.TrimSpace(stderr)) == "": // killed, most often, with nothing said
		return fmt.Errorf("exit %d", code)
	case code != 0:
		return fmt.Errorf("exit %d: %s", code, cmp.Or(first, strings.TrimSpace(stderr)))
	case first != "":
		return fmt.Errorf("exit 0: %s", first)
	}
	return nil
}

// WhatProvides names the installed packages of root that provide
// capability (a provide, a file, a package name), as rpm -q --whatprovides
// finds them: none is not an error. root must hold a database (the front
// end checks first: rpm would make an empty one).
func (t Tools) WhatProvides(ctx context.Context, root, capability string) ([]string, error) {
	var stdout, stderr strings.Builder
	args := []string{"--root", root, "-q", "--whatprovides", "--qf", "%{NAME}\n", "--", capability}
	code, err := t.Exec(ctx, 0, "rpm", args, nil, &stdout, &stderr)
	switch {
	case err != nil:
		return nil, fmt.Errorf("rpm -q --whatprovides in %s: %w", root, err)
	case code == 1 && noSuchCapability(stderr.String()): // "no package provides …" on stdout
		return nil, nil
	case code != 0:
		return nil, fmt.Errorf("rpm -q --whatprovides in %s: exit %d: %s", root, code, strings.TrimSpace(stderr.String()))
	}
	return strings.Fields(stdout.String()), nil
}

// noSuchCapability tells whether rpm's stderr says only that nothing
// provides what was asked (nothing, or a file that does not exist), not
// that it could not read its database.
func noSuchCapability(stderr string) bool {
	for line := range strings.Lines(stderr) {
		if !strings.HasSuffix(strings.TrimSpace(line), ": No such file or directory") {
			return false
		}
	}
	return true
}

// ImportKeys imports armored key files into the rpm database of root
// (`rpmkeys --root ROOT --import`), e.g. a dnf installroot or a test's dom0.
func ImportKeys(ctx context.Context, root string, keyFiles []string) error {
	t, err := New("")
	if err != nil {
		return err
	}
	defer t.Close()
	var errs []error
	for _, f := range keyFiles {
		abs, err := filepath.Abs(f)
		if err == nil {
			err = t.Run(ctx, "rpmkeys --import "+f, nil, io.Discard, "rpmkeys", "--root", root, "--import", abs)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
