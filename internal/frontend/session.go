package frontend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/atomicfile"
	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/dom0"
)

// The front end's half of the files it shares with the receive service in
// dom0's state directory (overview.md steps 4–6): it starts a session here,
// then reads the progress (progress.go) and the result (result.go). They
// live here, not in internal/dom0, so that the service, dom0's trusted
// code, does not carry them.

// checkNetworkRepos stops a run before the UpdateVM is asked anything when
// dom0's network repository configuration enables no repository with the
// user's switches: every .repo file skipped (dnf cannot parse it) or
// disabled. The UpdateVM would find nothing to download or list, and the
// run would end with its dnf's failure, or "no updates" for --check-only.
func checkNetworkRepos(c dom0.Config, switches []dnfconf.RepoSwitch) error {
	repos, skipped, err := dnfconf.ReadNetworkRepos(c.Root, switches)
	if err != nil {
		return fmt.Errorf("dom0's repository configuration: %w", err)
	}
	if len(repos.Enabled) > 0 {
		return nil
	}
	dir := c.Path(dnfconf.NetworkReposDir)
	files, err := dnfconf.RepoFiles(dir)
	if err != nil {
		return fmt.Errorf("dom0's repository configuration: %w", err)
	}
	why := "it has no .repo file"
	if len(files) > 0 {
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = filepath.Base(f)
		}
		why = "read: " + strings.Join(names, ", ")
		if len(switches) > 0 {
			why += "; with the --enablerepo/--disablerepo given"
		}
	}
	for _, s := range skipped {
		why += "; " + s
	}
	todo := "enable a repository there (enabled=1) or fix the file dnf skips"
	if len(switches) > 0 {
		todo = "leave out or change the --disablerepo/--enablerepo given, or " + todo
	}
	return fmt.Errorf("no network repository is enabled in %s (%s): %s would have nothing to resolve updates from, so it was not asked; %s", dir, why, c.UpdateVM, todo)
}

// NewSession creates a fresh session id and makes it the live one, replacing
// any earlier session that was never delivered. The last delivery's result
// stays until the next delivery's replaces it (overview.md, "state/"):
// ReadResult takes only the result of its own session.
//
// The session carries the network repositories that dom0's configuration
// enables with the user's switches, and their package lists: the receive
// service judges the delivery against them and reads no configuration file.
// What dnf will skip in that configuration is named on warn.
//
// The session is live until release is called or this process ends: it
// holds a shared lock on the session file, which the receive service
// requires (dom0.ClaimSession, C2). Keep release until the session ends:
// the descriptor it closes is the lock.
func NewSession(c dom0.Config, s dom0.Session, switches []dnfconf.RepoSwitch, warn io.Writer) (_ dom0.Session, release func(), err error) {
	repos, skipped, err := dnfconf.ReadNetworkRepos(c.Root, switches)
	if err != nil {
		return s, nil, fmt.Errorf("dom0's repository configuration: %w", err)
	}
	for _, w := range skipped {
		warnf(warn, "%s", w)
	}
	s.Repos = &repos
	var b [dom0.SessionIDLength / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return s, nil, err
	}
	s.ID = hex.EncodeToString(b[:])
	s.Created = time.Now().UTC()
	if s.Deadline.IsZero() {
		s.Deadline = s.Created.Add(c.ReceiveTimeout)
	}
	dir := c.Path(dom0.StateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return s, nil, err
	}
	// Found now, not after the download: a claim could not take their names.
	for _, old := range []string{dom0.ClaimedFile, dom0.ProgressFile} {
		if err := os.Remove(filepath.Join(dir, old)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return s, nil, fmt.Errorf("removing the last delivery's %s: %w", old, err)
		}
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return s, nil, err
	}
	// Found now, not by the receive service after a whole download.
	if len(data)+1 > dom0.MaxSessionBytes {
		return s, nil, fmt.Errorf("this update's session (its package names and repositories) takes %d bytes, more than the %d dom0's receive service reads: name fewer packages in one run", len(data)+1, dom0.MaxSessionBytes)
	}
	path := filepath.Join(dir, dom0.SessionFile)
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return s, nil, err
	}
	// No claim can come before: the UpdateVM learns the id from the caller
	// once this returns.
	f, err := os.Open(path)
	if err == nil {
		if err = unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.Remove(path)
		return s, nil, fmt.Errorf("holding the session: %w", err)
	}
	return s, func() { f.Close() }, nil
}

// CancelSession withdraws the live session (the front end gave up waiting)
// and reports whether it was still live. Removing it is atomic with the
// receive service's claim (a rename of the same file): false means a
// delivery claimed it first.
func CancelSession(c dom0.Config) bool {
	return os.Remove(filepath.Join(c.Path(dom0.StateDir), dom0.SessionFile)) == nil
}

// lockReceive takes the receive service's lock (dom0.ReceiveLockFile). It is held when a
// delivery is still being verified and published, which goes on after the pedos-dom0-update
// that asked for it was killed: a run that delivers would then be refused after the UpdateVM
// had downloaded and sent everything, and --clean would remove that service's build. unchanged
// says what the refusal leaves as it was. A lock held for less than serviceGoneAfter is
// waited for: the service of the run just before this one releases it as it exits, an
// instant after its result, which that run may already have read.
func lockReceive(c dom0.Config, unchanged string) (func(), error) {
	path := filepath.Join(c.Path(dom0.StateDir), dom0.ReceiveLockFile)
	unlock, err := dom0.LockFile(path)
	for end := time.Now().Add(serviceGoneAfter); errors.Is(err, unix.EWOULDBLOCK) && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		unlock, err = dom0.LockFile(path)
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, fmt.Errorf("pedos-receive-updates is still verifying a delivery (it holds %s: one an earlier run started, whose pedos-dom0-update ended first); %s: run again when it has finished (the qrexec daemon's journal shows its end)", path, unchanged)
	}
	return unlock, err
}

// cleanCachedRepo replaces the cached repository with an empty one
// (--clean), metadata and all, as the package installs it: dom0's dnf
// reads the cached repository whenever it loads its repositories, and
// fails on one without repodata/.
// The caller holds the receive lock (lockReceive): NewRepoBuild removes the builds it finds,
// a running receive service's too.
func cleanCachedRepo(ctx context.Context, c dom0.Config, tools Tools, warn io.Writer) error {
	b, err := dom0.NewRepoBuild(c)
	if err != nil {
		return err
	}
	if err := tools.CreateRepo(ctx, b.Dir); err != nil {
		return errors.Join(fmt.Errorf("emptying the cached repository: %w", err), b.Discard())
	}
	return b.Publish(c, time.Time{}, warn)
}
