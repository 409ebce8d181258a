// Package pkgtool is the one place that runs rpm's tools: rpmkeys, rpm and
// createrepo_c here, dnf and rpmdb through dnftool (which dom0's receive
// service does not link). Every run gets a clean environment: LC_ALL=C,
// a fixed PATH and a private HOME whose .rpmmacros fixes Debian's rpm
// defaults (real-tools.md), and nothing else from the caller. The tool
// itself is found in the caller's PATH: pedos-receive-updates sets its own
// (--tool-path) before anything runs; pedos-rpmcheck is a person's command.
package pkgtool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"strings"
	"sync"

	"pedos.dev/updates/internal/rpm"
)

// rpmDBPath is where every rpm database is, below its root.
const rpmDBPath = "/var/lib/rpm"

const rpmMacros = "%_dbpath " + rpmDBPath + "\n%__gpg /usr/bin/gpg\n"

// RPMKeys is the strict rpmkeys cross-check of verify.md §1: an rpm
// database holding only the trusted keys, and the strict command line. It
// runs rpmkeys as Tools runs every tool (its own Tools, not exported: their
// other tools would not use this database).
type RPMKeys struct {
	tools  *Tools
	dbPath string
}

// Close removes the database with the private HOME.
func (c *RPMKeys) Close() error { return c.tools.Close() }

// NewRPMKeys imports keyFiles into a fresh database under a private
// temporary directory. A key rpm cannot import is returned as a warning
// and left out, so packages it signed fail the cross-check (and so
// disagree with the native verifier) instead of blocking every other
// package.
func NewRPMKeys(ctx context.Context, tmpDir string, keyFiles []string) (*RPMKeys, []error, error) {
	tools, err := NewTools(tmpDir)
	if err != nil {
		return nil, nil, fmt.Errorf("rpmkeys keyring: %w", err)
	}
	c := &RPMKeys{tools: tools, dbPath: filepath.Join(tools.dir, "rpmdb")}
	// One warning per key file rpm refused.
	var warnings []error
	for _, f := range keyFiles {
		abs, err := filepath.Abs(f)
		if err == nil {
			err = tools.Run(ctx, "rpmkeys --import "+f, nil, io.Discard, "rpmkeys", "--dbpath", c.dbPath, "--import", abs)
		}
		if err != nil {
			warnings = append(warnings, err)
		}
	}
	return c, warnings, nil
}

// CheckParallel is CheckBatch with the files dealt out to runs rpmkeys
// runs at once: rpmkeys hashes every payload on one core, and a delivery
// can be gigabytes.
func (c *RPMKeys) CheckParallel(ctx context.Context, files []string, runs int) map[string]error {
	chunks := make([][]string, max(runs, 1))
	for i, f := range files {
		chunks[i%len(chunks)] = append(chunks[i%len(chunks)], f)
	}
	verdicts := make(map[string]error, len(files))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, chunk := range chunks {
		wg.Go(func() {
			v := c.CheckBatch(ctx, chunk)
			mu.Lock()
			defer mu.Unlock()
			maps.Copy(verdicts, v)
		})
	}
	wg.Wait()
	return verdicts
}

// CheckBatch checks many packages in one rpmkeys run and returns each
// file's verdict (nil: accepted). Every file gets an entry, so a caller
// can treat a missing one as a refusal. A file is accepted only if its line is
// exactly "FILE: digests signatures OK" and the exit code counts exactly
// the other files as failures (rpmkeys exits with the number of failures).
func (c *RPMKeys) CheckBatch(ctx context.Context, files []string) map[string]error {
	verdicts, run := c.check(ctx, files)
	if run <= 1 {
		return verdicts
	}
	// rpm prints a file's name before it reads the file and ends the line
	// only with the verdict: a file it cannot read leaves "FILE:" unended,
	// so the next file's verdict lands on that line, and the run's error
	// messages are not one file's. Every file the batch did not accept is
	// checked again alone, for its own line and reason.
	for _, f := range files {
		if verdicts[f] != nil {
			again, _ := c.check(ctx, []string{f})
			maps.Copy(verdicts, again)
		}
	}
	return verdicts
}

// check runs rpmkeys once over the files it can name to rpmkeys, reads its
// verdict on each, and returns how many the run checked.
func (c *RPMKeys) check(ctx context.Context, files []string) (verdicts map[string]error, run int) {
	verdicts = make(map[string]error, len(files))
	args := []string{"--dbpath", c.dbPath, "-K", "--define", "_pkgverify_level all", "--define", "_pkgverify_flags 0x0", "--"}
	var checked []string
	for _, f := range files {
		abs, err := filepath.Abs(f)
		switch {
		case strings.ContainsAny(f, "\n") || strings.HasPrefix(f, "-"):
			verdicts[f] = rejected("path unsuitable for rpmkeys")
		case err != nil:
			verdicts[f] = rejected(err.Error())
		default:
			checked = append(checked, f)
			args = append(args, abs)
		}
	}
	if len(checked) == 0 {
		return verdicts, 0
	}
	var stdout, stderr strings.Builder
	code, err := c.tools.Exec(ctx, ToolWaitDelay, "rpmkeys", args, nil, &stdout, &stderr)
	if err != nil {
		for _, f := range checked {
			verdicts[f] = fmt.Errorf("%w: %v", ErrRPMKeysFailed, err)
		}
		return verdicts, len(checked)
	}
	lines := strings.Split(stdout.String(), "\n")
	failures := 0
	for i, f := range checked {
		name := args[len(args)-len(checked)+i]
		line, found := lineFor(lines, name)
		if line == "digests signatures OK" {
			verdicts[f] = nil
			continue
		}
		failures++
		said := ""
		if first := firstLine(stderr.String()); first != "" {
			said = fmt.Sprintf(" (%q)", first)
		}
		switch {
		case !found && !strings.Contains(stderr.String(), name):
			// rpm names a file on stdout before it reads it, or in its
			// error about it (one it cannot open): named nowhere, the
			// file was never reached. rpmkeys failed before it (a broken
			// install, a database it cannot open): no verdict on it.
			verdicts[f] = fmt.Errorf("%w: it gave no verdict on the file (exit %d)%s", ErrRPMKeysFailed, code, said)
		case !found:
			verdicts[f] = rejected(`rpmkeys says "(no line)"` + said)
		default:
			verdicts[f] = rejected(fmt.Sprintf("rpmkeys says %q", line) + said)
		}
	}
	if failures != code {
		for _, f := range checked {
			if verdicts[f] == nil {
				verdicts[f] = rejected(fmt.Sprintf("rpmkeys exit code %d does not match its output", code))
			}
		}
	}
	return verdicts, len(checked)
}

// lineFor is the rest of the output line about file, if there is one: a
// file rpm could not read ends the output with "FILE:" alone.
func lineFor(lines []string, file string) (rest string, found bool) {
	for _, line := range lines {
		if rest, ok := strings.CutPrefix(line, file+":"); ok {
			return strings.TrimPrefix(rest, " "), true
		}
	}
	return "", false
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return first
}

// ErrRPMKeysRejected marks a package the rpmkeys cross-check refused.
var ErrRPMKeysRejected = errors.New("rejected by rpmkeys")

// ErrRPMKeysFailed marks a package rpmkeys could not check at all: no
// verdict about the package, so no disagreement either.
var ErrRPMKeysFailed = errors.New("could not run rpmkeys")

func rejected(why string) error {
	return fmt.Errorf("%w: %s", ErrRPMKeysRejected, why)
}

// Agree is the verdict on one package the native verifier accepted, given
// what CheckBatch or CheckParallel returned (verify.md §1): accepted only if
// rpmkeys accepted it too. A refusal by rpmkeys is a security error of its
// own class (rpm.KindVerifiersDisagree); a file rpmkeys gave no verdict on,
// or could not check, is refused without one (ErrRPMKeysFailed).
func Agree(verdicts map[string]error, file string) error {
	verdict, ok := verdicts[file]
	switch {
	case !ok:
		return fmt.Errorf("%w: it gave no verdict", ErrRPMKeysFailed)
	case errors.Is(verdict, ErrRPMKeysFailed):
		return verdict
	case verdict != nil:
		return &rpm.Error{Kind: rpm.KindVerifiersDisagree, Reason: "native verifier accepted the package but rpmkeys did not", Err: verdict}
	}
	return nil
}
