package pkgtool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Tools runs rpm, rpmdb, dnf and createrepo_c for dom0 and the UpdateVM,
// each with the clean environment of this package and one private HOME.
type Tools struct {
	dir, home string
}

// NewTools prepares the private HOME in a new directory below tmpDir ("":
// the system's); Close removes it.
func NewTools(tmpDir string) (*Tools, error) {
	dir, err := os.MkdirTemp(tmpDir, "pedos-tools-")
	if err != nil {
		return nil, err
	}
	home, err := makeHome(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Tools{dir: dir, home: home}, nil
}

// Close removes the private HOME.
func (t *Tools) Close() error { return os.RemoveAll(t.dir) }

// stream runs a tool with the caller's streams and returns its exit code;
// err is set only when it could not run at all.
func (t *Tools) stream(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = env(t.home), t.home
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	return 0, err
}

// DNF runs dnf. Callers pass --installroot, --config and reposdir
// (real-tools.md: without them dnf reads the host's repositories).
func (t *Tools) DNF(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return t.stream(ctx, "dnf", args, stdin, stdout, stderr)
}

// ExportRPMDB writes root's rpm database in rpmdb --exportdb form.
func (t *Tools) ExportRPMDB(root string, w io.Writer) error {
	var stderr strings.Builder
	code, err := t.stream(context.Background(), "rpmdb", []string{"--root", root, "--exportdb"}, nil, w, &stderr)
	if err == nil && code != 0 {
		err = fmt.Errorf("rpmdb --exportdb of %s: exit %d: %s", root, code, firstLine(stderr.String()))
	}
	return err
}

// ImportRPMDB replaces root's rpm database with an export file.
func (t *Tools) ImportRPMDB(root, exportFile string) error {
	f, err := os.Open(exportFile)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.RemoveAll(filepath.Join(root, "var", "lib", "rpm")); err != nil {
		return err
	}
	var stderr strings.Builder
	code, err := t.stream(context.Background(), "rpmdb", []string{"--root", root, "--importdb"}, f, io.Discard, &stderr)
	if err == nil && code != 0 {
		err = fmt.Errorf("rpmdb --importdb into %s: exit %d: %s", root, code, firstLine(stderr.String()))
	}
	return err
}

// CreateRepo writes repository metadata for the packages below dir.
func (t *Tools) CreateRepo(ctx context.Context, dir string) error {
	var stderr strings.Builder
	code, err := t.stream(ctx, "createrepo_c", []string{"--quiet", "--no-database", dir}, nil, io.Discard, &stderr)
	if err == nil && code != 0 {
		err = fmt.Errorf("createrepo_c %s: exit %d: %s", dir, code, firstLine(stderr.String()))
	}
	return err
}

// Installed is one package in an rpm database.
type Installed struct {
	Name, Version, Release, Arch string
	Epoch                        int
}

// InstalledPackages lists the packages in root's rpm database (gpg-pubkey
// pseudo-packages left out).
func (t *Tools) InstalledPackages(ctx context.Context, root string) ([]Installed, error) {
	// Where it finds no database, rpm makes an empty one and lists nothing:
	// dom0 would seem to have nothing installed, and the withholding and
	// downgrade checks (M2, M8) would pass for want of anything to check.
	if db := filepath.Join(root, rpmDBPath); !hasRPMDB(db) {
		return nil, fmt.Errorf("no rpm database in %s: refusing to judge the delivery against an empty one", db)
	}
	var out, stderr strings.Builder
	code, err := t.stream(ctx, "rpm", []string{"--root", root, "-qa", "--qf",
		`%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n`}, nil, &out, &stderr)
	if err == nil && code != 0 {
		err = fmt.Errorf("rpm -qa in %s: exit %d: %s", root, code, firstLine(stderr.String()))
	}
	if err != nil {
		return nil, err
	}
	var pkgs []Installed
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 || f[0] == "gpg-pubkey" {
			continue
		}
		epoch, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("rpm -qa in %s: bad epoch in %q", root, sc.Text())
		}
		pkgs = append(pkgs, Installed{Name: f[0], Epoch: epoch, Version: f[2], Release: f[3], Arch: f[4]})
	}
	return pkgs, nil
}

// hasRPMDB tells whether dir holds an rpm database, in any of rpm's formats
// (sqlite, Berkeley DB, ndb).
func hasRPMDB(dir string) bool {
	for _, name := range []string{"rpmdb.sqlite", "Packages", "Packages.db"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}
