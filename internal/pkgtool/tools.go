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
	"strings"
	"syscall"
	"time"

	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/rpmver"
)

// Tools runs rpm's tools, each with the clean environment of this package
// and one private HOME. dom0's receive service uses CreateRepo and
// InstalledPackages, and RPMKeys runs rpmkeys through one; dnftool adds
// dnf and rpmdb for the other programs.
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
	home := filepath.Join(dir, "home")
	err = os.Mkdir(home, 0o700)
	if err == nil {
		err = os.WriteFile(filepath.Join(home, ".rpmmacros"), []byte(rpmMacros), 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Tools{dir: dir, home: home}, nil
}

// Close removes the private HOME.
func (t *Tools) Close() error { return os.RemoveAll(t.dir) }

// ToolWaitDelay is how long a tool's output may stay open after its end
// when that output goes to memory (Exec).
const ToolWaitDelay = 2 * time.Second

// Exec runs a tool in the private, minimal environment with the caller's
// streams and returns its exit code; err is set only when it could not run
// at all, or its output could not be delivered. With a waitDelay (ToolWaitDelay, for a tool whose output goes to
// memory, never to a reader that may stall), once the tool has exited or
// been killed (the session's deadline), what it started and left holding
// its output (a wrapper's child, an agent) does not hold the caller past
// it; without one (dnf's output to a person's terminal, which may stall),
// all of the output is delivered.
func (t *Tools) Exec(ctx context.Context, waitDelay time.Duration, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = waitDelay
	cmd.Env, cmd.Dir = []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + t.home}, t.home
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	// The tool ended (a status; or ErrWaitDelay: it exited 0, and a child
	// it left holds its output, read up to the delay): its status, not an
	// error, whatever became of what it started.
	_, exited := errors.AsType[*exec.ExitError](err)
	if err != nil && !exited && !errors.Is(err, exec.ErrWaitDelay) || cmd.ProcessState == nil {
		return 0, err
	}
	// Killed by a signal: 128+N, as a shell says (Go says -1).
	if status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && status.Signaled() {
		return 128 + int(status.Signal()), nil
	}
	return cmd.ProcessState.ExitCode(), nil
}

// Run runs a tool (Exec with ToolWaitDelay: its stdout must not stall); a
// tool that could not run, or an exit status other than 0, is an error that
// says what it was doing (and then the first line of its stderr).
func (t *Tools) Run(ctx context.Context, what string, stdin io.Reader, stdout io.Writer, name string, args ...string) error {
	var stderr strings.Builder
	code, err := t.Exec(ctx, ToolWaitDelay, name, args, stdin, stdout, &stderr)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case code != 0 && firstLine(stderr.String()) == "": // killed, most often, with nothing said
		return fmt.Errorf("%s: exit %d", what, code)
	case code != 0:
		return fmt.Errorf("%s: exit %d: %s", what, code, firstLine(stderr.String()))
	}
	return nil
}

// CreateRepo writes repository metadata for the packages below dir.
func (t *Tools) CreateRepo(ctx context.Context, dir string) error {
	return t.Run(ctx, "createrepo_c "+dir, nil, io.Discard, "createrepo_c", "--quiet", "--no-database", dir)
}

// InstalledPackages lists the packages in root's rpm database (gpg-pubkey
// pseudo-packages left out).
func (t *Tools) InstalledPackages(ctx context.Context, root string) ([]repometa.NEVRA, error) {
	// Where it finds no database, rpm makes an empty one and lists nothing:
	// dom0 would seem to have nothing installed, and the withholding and
	// downgrade checks (M2, M8) would pass for want of anything to check.
	if err := RequireRPMDB(root); err != nil {
		return nil, fmt.Errorf("%w: refusing to judge the delivery against an empty one", err)
	}
	var out strings.Builder
	if err := t.Run(ctx, "rpm -qa in "+root, nil, &out, "rpm", "--root", root, "-qa", "--qf",
		`%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n`); err != nil {
		return nil, err
	}
	var pkgs []repometa.NEVRA
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 || f[0] == "gpg-pubkey" {
			continue
		}
		evr, err := rpmver.New(f[1], f[2], f[3])
		if err != nil {
			return nil, fmt.Errorf("rpm database in %s: %s: %w", root, f[0], err)
		}
		pkgs = append(pkgs, repometa.NEVRA{Name: f[0], EVR: evr, Arch: f[4]})
	}
	return pkgs, nil
}

// RequireRPMDB is an error unless root holds an rpm database, in any of
// rpm's formats (sqlite, Berkeley DB, ndb). rpm and rpmdb make an empty one
// where they find none, so without this check a mistyped root looks like a
// system with nothing installed.
func RequireRPMDB(root string) error {
	dir := filepath.Join(root, rpmDBPath)
	for _, name := range []string{"rpmdb.sqlite", "Packages", "Packages.db"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
			return nil
		}
	}
	return fmt.Errorf("no rpm database in %s", dir)
}
