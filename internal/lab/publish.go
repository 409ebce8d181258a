package lab

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"pedos.dev/updates/internal/testrepo"
)

// The mirror's repository, below DIR/mirror/www (served at the mirror's
// http://198.18.0.1/):
//
//	repo/revisions/NNNN/   one complete repository per publish (packages/, repodata/),
//	                       never changed once published
//	repo/current           -> revisions/NNNN, the newest (what pedos-lab.repo names)
//	repo/snapshots/NAME    -> ../revisions/NNNN, kept when publish --snapshot NAME
//
// so an old state stays reachable for rollback and freeze tests, at
// http://198.18.0.1/repo/snapshots/NAME/ or .../repo/revisions/NNNN/.
const (
	revisionsDir = "revisions"
	currentLink  = "current"
	snapshotsDir = "snapshots"
	packagesDir  = "packages"
)

func revisionName(n int) string { return fmt.Sprintf("%04d", n) }

// revisionPath is where revision n is, below the mirror's document root.
func revisionPath(n int) string { return "repo/" + revisionsDir + "/" + revisionName(n) + "/" }

func (l Layout) repoDir() string { return filepath.Join(l.mirrorWWW(), "repo") }

// PublishOptions says what to publish.
type PublishOptions struct {
	// Specs are package specs (see parseSpecs), added to the previous
	// revision's packages (a package with the same file name is replaced).
	// With none, Snapshot names the current revision.
	Specs []string
	// Snapshot keeps the published revision at repo/snapshots/NAME too.
	Snapshot string
	// Key signs the packages and repomd.xml (default DefaultKey, the key
	// dom0 trusts; another name makes or reuses another key).
	Key string
	// MetadataKey signs repomd.xml instead of Key; "none" publishes no
	// repomd.xml.asc.
	MetadataKey string
	// Time is the metadata's revision and timestamps (default: now, or one
	// second after the previous revision if that is later). An old time
	// stages a freeze; any time is accepted, for rollback tests.
	Time time.Time
}

// Revision is what a publish made.
type Revision struct {
	Number   int      `json:"number"`
	Revision int64    `json:"revision"` // repomd.xml <revision>
	Added    []string `json:"added"`    // package file names
	Path     string   `json:"path"`     // below the mirror's document root
}

// ArgumentError is a mistake in what the caller asked for (a package spec,
// a key, snapshot or UpdateVM name, nothing to publish), found before
// anything was done: pedos-lab reports it as a usage error.
type ArgumentError struct{ Err error }

func (e *ArgumentError) Error() string { return e.Err.Error() }
func (e *ArgumentError) Unwrap() error { return e.Err }

// Publish adds packages to the mirror of the lab in dir (running or not)
// and republishes its metadata, signed.
func Publish(dir string, opts PublishOptions) (Revision, error) {
	specs, err := opts.check()
	if err != nil {
		return Revision{}, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return Revision{}, err
	}
	if err := requireLab(dir); err != nil {
		return Revision{}, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return Revision{}, err
	}
	defer unlock()
	return (&Lab{Layout: Layout{Dir: dir}}).publishLocked(opts, specs)
}

// Publish adds packages to this lab's mirror (see the function Publish).
func (l *Lab) Publish(opts PublishOptions) (Revision, error) { return Publish(l.Dir, opts) }

// publishBase publishes the base packages as the first revision, once.
func (l *Lab) publishBase(base []string, logf func(string, ...any)) error {
	if _, err := os.Lstat(filepath.Join(l.repoDir(), currentLink)); err == nil {
		return nil
	}
	logf("publishing the base packages: %s", strings.Join(base, ", "))
	opts := PublishOptions{Specs: base, Snapshot: "base"}
	specs, err := opts.check()
	if err != nil {
		return err
	}
	_, err = l.publishLocked(opts, specs)
	return err
}

// check parses the specs and checks the names, so that a mistake in them
// is an ArgumentError, found before the lab is touched.
func (opts PublishOptions) check() ([]packageSpec, error) {
	specs, err := parseSpecs(opts.Specs)
	for _, name := range []struct{ what, value string }{
		{"--snapshot", opts.Snapshot}, {"--key", opts.Key}, {"--metadata-key", opts.MetadataKey},
	} {
		if err == nil && name.value != "" && !keyName.MatchString(name.value) {
			err = fmt.Errorf("%s %q: use [a-z0-9_-], at most 32 characters", name.what, name.value)
		}
	}
	if err == nil && len(specs) == 0 && opts.Snapshot == "" {
		err = errors.New("nothing to publish: give a package SPEC, or --snapshot NAME for the current revision")
	}
	if err != nil {
		return nil, &ArgumentError{Err: err}
	}
	return specs, nil
}

func (l *Lab) publishLocked(opts PublishOptions, specs []packageSpec) (Revision, error) {
	if opts.Key == "" {
		opts.Key = DefaultKey
	}
	if opts.MetadataKey == "" {
		opts.MetadataKey = opts.Key
	}
	previous, err := l.currentRevision()
	if err != nil {
		return Revision{}, err
	}
	if len(specs) == 0 { // check let this through only with a snapshot name
		if previous == 0 {
			return Revision{}, errors.New("publish --snapshot: no revision to snapshot yet")
		}
		return l.readRevision(previous), l.snapshot(opts.Snapshot, previous)
	}
	// Numbered after the highest revision, which need not be the current
	// one: current may have been pointed back at an older revision.
	highest, err := l.highestRevision()
	if err != nil {
		return Revision{}, err
	}
	number := max(previous, highest) + 1
	rev := Revision{Number: number, Path: revisionPath(number)}
	revisions := filepath.Join(l.repoDir(), revisionsDir)
	if err := os.MkdirAll(revisions, 0o755); err != nil {
		return rev, err
	}
	tmp, err := os.MkdirTemp(revisions, ".new-")
	if err != nil {
		return rev, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return rev, err
	}
	if rev.Added, err = l.fillPackages(tmp, previous, specs, opts.Key); err != nil {
		return rev, err
	}
	rev.Revision = l.nextRevision(previous, opts.Time)
	if err := createrepo(tmp, rev.Revision); err != nil {
		return rev, err
	}
	if opts.MetadataKey != "none" {
		if err := l.signMetadata(tmp, opts.MetadataKey); err != nil {
			return rev, err
		}
	}
	final := filepath.Join(revisions, revisionName(rev.Number))
	if err := os.Rename(tmp, final); err != nil {
		return rev, err
	}
	if err := replaceSymlink(filepath.Join(revisionsDir, revisionName(rev.Number)), filepath.Join(l.repoDir(), currentLink)); err != nil {
		return rev, err
	}
	if opts.Snapshot != "" {
		return rev, l.snapshot(opts.Snapshot, rev.Number)
	}
	return rev, nil
}

// nextRevision is the repomd.xml revision of the revision after previous:
// at, if given, else now, made later than previous's if it is not.
func (l *Lab) nextRevision(previous int, at time.Time) int64 {
	if !at.IsZero() {
		return at.Unix()
	}
	next := time.Now().Unix()
	if prev := l.readRevision(previous).Revision; next <= prev {
		next = prev + 1
	}
	return next
}

// fillPackages links the previous revision's packages into dir/packages
// (revisions never change, so sharing inodes is safe) and builds the new
// ones there, signed with their own key or defaultKey. It returns the new
// packages' file names.
func (l *Lab) fillPackages(dir string, previous int, specs []packageSpec, defaultKey string) ([]string, error) {
	pkgDir := filepath.Join(dir, packagesDir)
	if err := os.Mkdir(pkgDir, 0o755); err != nil {
		return nil, err
	}
	if previous > 0 {
		prevDir := filepath.Join(l.repoDir(), revisionsDir, revisionName(previous), packagesDir)
		entries, err := os.ReadDir(prevDir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if err := os.Link(filepath.Join(prevDir, e.Name()), filepath.Join(pkgDir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	var added []string
	for _, s := range specs {
		var signers []*testrepo.Signer
		if key := cmp.Or(s.key, defaultKey); key != "none" {
			signer, err := l.signer(key)
			if err != nil {
				return nil, err
			}
			signers = append(signers, signer)
		}
		rpmFile, err := testrepo.Build(s.pkg, signers...)
		if err != nil {
			return nil, err
		}
		name := s.pkg.FileName()
		// A new inode: the previous revision's file (a hard link) stays.
		path := filepath.Join(pkgDir, name)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err := os.WriteFile(path, rpmFile, 0o644); err != nil {
			return nil, err
		}
		added = append(added, name)
	}
	return added, nil
}

// createrepo runs createrepo_c with gzip metadata (what dnf and dom0's
// metadata check read; the UpdateVM forwards primary decompressed) and the
// given revision as the revision and every timestamp in repomd.xml.
func createrepo(dir string, revision int64) error {
	out, err := runHost(context.Background(), "createrepo_c", "--quiet", "--no-database",
		"--general-compress-type", "gz", "--revision", strconv.FormatInt(revision, 10),
		"--set-timestamp-to-revision", dir)
	if err != nil {
		return fmt.Errorf("createrepo_c %s: %w\n%s", dir, err, out)
	}
	return nil
}

// signMetadata writes repodata/repomd.xml.asc, an armored detached
// signature of repomd.xml (verify.md §2).
func (l *Lab) signMetadata(dir, key string) error {
	signer, err := l.signer(key)
	if err != nil {
		return err
	}
	repomd := filepath.Join(dir, "repodata", "repomd.xml")
	signed, err := os.ReadFile(repomd)
	if err != nil {
		return err
	}
	sig, err := signer.SignDetached(signed)
	if err != nil {
		return err
	}
	var armored bytes.Buffer
	w, err := armor.Encode(&armored, "PGP SIGNATURE", nil)
	if err != nil {
		return err
	}
	if _, err := w.Write(sig); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(repomd+".asc", armored.Bytes(), 0o644)
}

// currentRevision is the number of the revision repo/current names (0: none).
func (l *Lab) currentRevision() (int, error) {
	target, err := os.Readlink(filepath.Join(l.repoDir(), currentLink))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(filepath.Base(target))
	if err != nil {
		return 0, fmt.Errorf("%s: unexpected target %q", filepath.Join(l.repoDir(), currentLink), target)
	}
	return n, nil
}

// highestRevision is the number of the newest revision directory (0 if
// there is none).
func (l *Lab) highestRevision() (int, error) {
	entries, err := os.ReadDir(filepath.Join(l.repoDir(), revisionsDir))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	highest := 0
	for _, e := range entries {
		if n, convErr := strconv.Atoi(e.Name()); convErr == nil {
			highest = max(highest, n)
		}
	}
	return highest, err
}

// readRevision describes a published revision; the repomd.xml revision is
// read back from the file (0 if there is none).
func (l *Lab) readRevision(n int) Revision {
	rev := Revision{Number: n, Path: revisionPath(n)}
	b, err := os.ReadFile(filepath.Join(l.repoDir(), revisionsDir, revisionName(n), "repodata", "repomd.xml"))
	if err == nil {
		if _, after, ok := strings.Cut(string(b), "<revision>"); ok {
			if value, _, ok := strings.Cut(after, "</revision>"); ok {
				rev.Revision, _ = strconv.ParseInt(value, 10, 64)
			}
		}
	}
	return rev
}

// snapshot makes repo/snapshots/NAME name revision n.
func (l *Lab) snapshot(name string, n int) error {
	dir := filepath.Join(l.repoDir(), snapshotsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return replaceSymlink(filepath.Join("..", revisionsDir, revisionName(n)), filepath.Join(dir, name))
}

// replaceSymlink points link at target in one step (a reader of the mirror
// sees the old revision or the new one, never none).
func replaceSymlink(target, link string) error {
	tmp := link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// runHost runs a host tool with a minimal environment and returns its
// combined output.
func runHost(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	return cmd.CombinedOutput()
}
