package attack

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/lab"
)

// Dom0State is what no refused delivery may change in dom0 (threats.md:
// installed packages, rpm database, cached repository, freshness state),
// plus every file dom0 sees, to tell what a run created, removed or
// changed.
type Dom0State struct {
	Installed  []string
	RPMDB      string
	CachedRepo string
	Freshness  string
	// Files maps each path below dom0's root (outside the paths an update
	// is expected to write, see volatile) to what it is.
	Files map[string]FileState
}

// FileState is what a file is: its type and permissions (setuid and the
// like included), owner, a symbolic link's target, and a regular file's
// SHA-256 (outside notRead).
type FileState struct {
	Mode     fs.FileMode
	UID, GID uint32
	Link     string
	SHA256   [sha256.Size]byte
}

// volatile are the dom0 paths every update writes: the session, result and
// lock (state directory, whose freshness.json is compared by content), the
// update log, the lab's service logs, the staging directory (checked to be
// empty on its own), and the rpm database's shared-memory index, which
// readers write too (the database itself is compared by content).
var volatile = []string{
	strings.TrimPrefix(dom0.StateDir, "/"),
	strings.TrimPrefix(dom0.StagingDir, "/"),
	"var/log/pedos",
	"var/log/pedos-lab",
	"var/lib/rpm/rpmdb.sqlite-shm",
}

// notRead are the dom0 paths whose files are compared without their
// contents: the other domains' qrexec socket directories, which they write.
var notRead = []string{strings.TrimPrefix(lab.QrexecDir, "/")}

// hostBacked are the top-level directories of dom0's root that are the
// lab's directory, where their files are read (/etc, /var, /root, /tmp,
// what dom0 installed in /usr), or the kernel's. The rest only dom0's
// mount namespace holds: its root, a tmpfs of its own, /run, /dev (a tmpfs
// with a few devices bound in) and /dev/shm.
var hostBacked = []string{"etc", "var", "root", "tmp", "usr", "proc", "sys"}

// CaptureDom0 records dom0's state; l is a running lab. Its files are read
// in the lab's directory, then through its init's view of its root
// (/proc/PID/root) for what only its mount namespace holds (a file written
// to /run or /dev/shm leaves no trace in the lab's directory).
func CaptureDom0(l *lab.Lab, installed []string) (Dom0State, error) {
	root := l.Root(lab.Dom0)
	s := Dom0State{Installed: installed, Files: map[string]FileState{}}
	var err error
	if s.RPMDB, err = TreeDigest(filepath.Join(root, "var/lib/rpm"), "rpmdb.sqlite"); err != nil {
		return s, err
	}
	if s.CachedRepo, s.Freshness, err = repoDigests(root); err != nil {
		return s, err
	}
	if err := s.addFiles(root, "."); err != nil {
		return s, err
	}
	init, ok := l.State.Domains[lab.Dom0]
	if !ok {
		return s, errors.New("dom0 is not running: its own files cannot be read")
	}
	// Its init's root, held open, so that a pid reused meanwhile cannot
	// show another process's files.
	rootDir, err := os.Open(fmt.Sprintf("/proc/%d/root", init.Init.PID))
	if err != nil {
		return s, err
	}
	defer rootDir.Close()
	if !init.Init.Alive() {
		return s, errors.New("dom0's init is not running: its own files cannot be read")
	}
	nsRoot := fmt.Sprintf("/proc/self/fd/%d", rootDir.Fd())
	top, err := os.ReadDir(nsRoot)
	if err != nil {
		return s, err
	}
	for _, e := range top {
		if !slices.Contains(hostBacked, e.Name()) {
			if err := s.addFiles(nsRoot, e.Name()); err != nil {
				return s, err
			}
		}
	}
	// Its mounts go with it: a walk after it ended saw empty directories.
	if !init.Init.Alive() {
		return s, errors.New("dom0's init ended while its files were read")
	}
	return s, nil
}

// repoDigests are the digests of dom0's cached repository and of its
// freshness state, below root.
func repoDigests(root string) (repo, freshness string, err error) {
	if repo, err = TreeDigest(filepath.Join(root, strings.TrimPrefix(dom0.CachedRepoDir, "/")), ""); err != nil {
		return "", "", err
	}
	freshness, err = TreeDigest(filepath.Join(root, strings.TrimPrefix(dom0.StateDir, "/")), "freshness.json")
	return repo, freshness, err
}

// addFiles records the files below root/start (start included, unless it
// is "."), outside volatile, by their paths relative to root.
func (s Dom0State) addFiles(root, start string) error {
	return filepath.WalkDir(filepath.Join(root, start), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		if under(rel, volatile) {
			return skipDir(d)
		}
		// Its own type, not its directory entry's: /dev/null is an empty
		// file with the device bound over it, which must not be read.
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := FileState{Mode: info.Mode()}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			f.UID, f.GID = st.Uid, st.Gid
		}
		switch {
		case f.Mode.Type() == fs.ModeSymlink:
			if f.Link, err = os.Readlink(path); err != nil {
				return err
			}
		case f.Mode.IsRegular() && !under(rel, notRead):
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f.SHA256 = sha256.Sum256(data)
		}
		s.Files[rel] = f
		return nil
	})
}

func skipDir(d fs.DirEntry) error {
	if d.IsDir() {
		return filepath.SkipDir
	}
	return nil
}

// under says whether rel is one of dirs or below one.
func under(rel string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return rel == d || strings.HasPrefix(rel, d+"/") })
}

// Unchanged lists how after differs from s, ignoring files below the
// allowed paths (relative to dom0's root); nil means nothing changed.
func (s Dom0State) Unchanged(after Dom0State, allowed ...string) []string {
	var diffs []string
	if strings.Join(s.Installed, " ") != strings.Join(after.Installed, " ") {
		diffs = append(diffs, fmt.Sprintf("installed packages changed: %v -> %v", s.Installed, after.Installed))
	}
	if s.RPMDB != after.RPMDB {
		diffs = append(diffs, "the rpm database changed")
	}
	if s.CachedRepo != after.CachedRepo {
		diffs = append(diffs, "the cached repository changed")
	}
	if s.Freshness != after.Freshness {
		diffs = append(diffs, "the freshness state changed")
	}
	return append(diffs, s.filesDiff(after, allowed)...)
}

// filesDiff names files created, removed or changed outside the allowed
// paths.
func (s Dom0State) filesDiff(after Dom0State, allowed []string) []string {
	var created, removed, changed []string
	for p, f := range after.Files {
		was, ok := s.Files[p]
		switch {
		case under(p, allowed):
		case !ok:
			created = append(created, "/"+p)
		case was != f:
			changed = append(changed, "/"+p)
		}
	}
	for p := range s.Files {
		if _, ok := after.Files[p]; !ok && !under(p, allowed) {
			removed = append(removed, "/"+p)
		}
	}
	var diffs []string
	for _, d := range []struct {
		what  string
		paths []string
	}{{"files created in dom0 outside the staging directory", created}, {"files removed in dom0", removed}, {"files changed in dom0", changed}} {
		if len(d.paths) > 0 {
			sort.Strings(d.paths)
			diffs = append(diffs, d.what+": "+clip(strings.Join(d.paths, " "), 300))
		}
	}
	return diffs
}

// TreeDigest hashes the names and contents of the regular files below dir
// (only the files called only, when set). A missing dir hashes as empty.
func TreeDigest(dir, only string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() || (only != "" && d.Name() != only) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s %x\n", rel, sha256.Sum256(data))
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil)), err
}

// installed is dom0's package set, NAME-VERSION-RELEASE sorted, without
// the gpg-pubkey pseudo-packages.
func (e *Env) installed() ([]string, error) {
	out, err := e.mustExec(lab.Dom0, "rpm", "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\n")
	if err != nil {
		return nil, err
	}
	var pkgs []string
	for _, p := range strings.Fields(out) {
		if !strings.HasPrefix(p, "gpg-pubkey-") {
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	return pkgs, nil
}

func (e *Env) capture() (Dom0State, error) {
	installed, err := e.installed()
	if err != nil {
		return Dom0State{}, err
	}
	return CaptureDom0(e.Lab, installed)
}

// process is a process in a domain, by host pid and start time, so that a
// reused pid is never signalled.
type process struct {
	domain, command string
	pid             int
	start           uint64
}

func (p process) kill() {
	if start, err := lab.StartTime(p.pid); err == nil && start == p.start {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// processes maps each domain to the host pids running in it.
func (e *Env) processes() (map[string]map[int]bool, error) {
	st, err := lab.GetStatus(e.Lab.Dir)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int]bool{}
	for _, d := range st.Domains {
		out[d.Name] = map[int]bool{}
		for _, p := range d.Processes {
			out[d.Name][p.PID] = true
		}
	}
	return out, nil
}

// extraProcesses lists the processes in every domain but the mirror that were not
// there when the lab came up.
func (e *Env) extraProcesses() ([]process, error) {
	st, err := lab.GetStatus(e.Lab.Dir)
	if err != nil {
		return nil, err
	}
	var extra []process
	for _, d := range st.Domains {
		if d.Name == lab.Mirror {
			continue
		}
		for _, p := range d.Processes {
			if e.baseline[d.Name][p.PID] {
				continue
			}
			if start, err := lab.StartTime(p.PID); err == nil {
				extra = append(extra, process{domain: d.Name, command: p.Command, pid: p.PID, start: start})
			}
		}
	}
	return extra, nil
}

// leftInDom0 waits up to a few seconds for dom0 to be back to its baseline
// processes and names those still running.
func (e *Env) leftInDom0() ([]string, error) {
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		extra, err := e.extraProcesses()
		if err != nil {
			return nil, err
		}
		left = left[:0]
		for _, p := range extra {
			if p.domain == lab.Dom0 {
				left = append(left, fmt.Sprintf("%d %s", p.pid, clip(p.command, 80)))
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left, nil
		}
	}
}

// stagingLeft lists what is left in dom0's staging directory.
func (e *Env) stagingLeft() []string {
	entries, _ := os.ReadDir(e.dom0Path(dom0.StagingDir))
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}
