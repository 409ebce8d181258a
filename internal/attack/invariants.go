package attack

import (
	"crypto/sha256"
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
// plus the files below dom0's root, to see what a run created.
type Dom0State struct {
	Installed  []string
	RPMDB      string
	CachedRepo string
	Freshness  string
	// Files maps each path below dom0's root (outside the paths an update
	// is expected to write, see volatile) to its type.
	Files map[string]fs.FileMode
}

// volatile are the dom0 paths every update writes: the session, result and
// lock (state directory, whose freshness.json is compared by content), the
// update log, the lab's service logs, and the staging directory (checked
// to be empty on its own).
var volatile = []string{
	strings.TrimPrefix(dom0.StateDir, "/"),
	strings.TrimPrefix(dom0.StagingDir, "/"),
	"var/log/pedos",
	"var/log/pedos-lab",
}

// CaptureDom0 records dom0's state; l is a running lab.
func CaptureDom0(l *lab.Lab, installed []string) (Dom0State, error) {
	root := l.Root(lab.Dom0)
	s := Dom0State{Installed: installed, Files: map[string]fs.FileMode{}}
	var err error
	digests := []struct {
		dst       *string
		dir, only string
	}{
		{&s.RPMDB, "var/lib/rpm", "rpmdb.sqlite"},
		{&s.CachedRepo, strings.TrimPrefix(dom0.CachedRepoDir, "/"), ""},
		{&s.Freshness, strings.TrimPrefix(dom0.StateDir, "/"), "freshness.json"},
	}
	for _, d := range digests {
		if *d.dst, err = TreeDigest(filepath.Join(root, d.dir), d.only); err != nil {
			return s, err
		}
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
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
		s.Files[rel] = d.Type()
		return nil
	})
	return s, err
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

// filesDiff names files created or removed outside the allowed paths.
func (s Dom0State) filesDiff(after Dom0State, allowed []string) []string {
	var created, removed []string
	for p := range after.Files {
		if _, ok := s.Files[p]; !ok && !under(p, allowed) {
			created = append(created, "/"+p)
		}
	}
	for p := range s.Files {
		if _, ok := after.Files[p]; !ok && !under(p, allowed) {
			removed = append(removed, "/"+p)
		}
	}
	sort.Strings(created)
	sort.Strings(removed)
	var diffs []string
	if len(created) > 0 {
		diffs = append(diffs, "files created in dom0 outside the staging directory: "+clip(strings.Join(created, " "), 300))
	}
	if len(removed) > 0 {
		diffs = append(diffs, "files removed in dom0: "+clip(strings.Join(removed, " "), 300))
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
