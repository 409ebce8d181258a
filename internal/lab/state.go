package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"pedos.dev/updates/internal/atomicfile"
)

// stateFile is the record of a lab in its directory: what `up` started and
// made, so that `down` can undo exactly that, even after a crash (issue 5).
const stateFile = "lab.json"

// State is the content of DIR/lab.json.
type State struct {
	Version  int    `json:"version"`
	UpdateVM string `json:"updatevm"`
	// BinDir is where the programs came from; the next Up reuses it
	// unless told otherwise.
	BinDir string `json:"bin_dir"`
	// Domains maps a domain name to its running processes.
	Domains map[string]*DomainState `json:"domains"`
	// MirrorAddr and UpdateVMAddr are the two ends of the veth link.
	MirrorAddr   string `json:"mirror_addr"`
	UpdateVMAddr string `json:"updatevm_addr"`
}

// DomainState is one domain's init process and the services it started.
type DomainState struct {
	Init     Process   `json:"init"`
	Services []Process `json:"services,omitempty"`
	// PIDNamespace and NetNamespace are the inode numbers of the domain's
	// namespaces (as in /proc/PID/ns/*), to tell after `down` that nothing
	// is left in them.
	PIDNamespace uint64 `json:"pid_namespace"`
	NetNamespace uint64 `json:"net_namespace"`
}

// Process names one process by host pid and start time, so that a pid the
// kernel has since reused for something else is never signalled.
type Process struct {
	Name      string `json:"name"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

func loadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	if s.Version != 1 {
		return nil, fmt.Errorf("%s: unknown version %d", filepath.Join(dir, stateFile), s.Version)
	}
	return &s, nil
}

// running says whether every domain's init and every service the lab
// started (the qrexec daemon and agents, by pid and start time) is alive:
// a lab whose agent died is not up, and up starts it afresh.
func (s *State) running() bool {
	if len(s.Domains) != 4 {
		return false
	}
	for _, d := range s.Domains {
		if !d.Init.Alive() {
			return false
		}
		for _, p := range d.Services {
			if !p.Alive() {
				return false
			}
		}
	}
	return true
}

func (s *State) save(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, stateFile), append(b, '\n'), 0o600)
}

// selfRecord is where a domain's init records itself, in case `up` is
// killed before it records the init in lab.json.
func (d DomainLayout) selfRecord() string { return filepath.Join(d.Base, "init.json") }

// recordSelf writes the calling init's record: its host pid (what the
// host's /proc, still mounted, calls it) and namespaces.
func recordSelf(d DomainLayout) error {
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(self)
	if err != nil {
		return err
	}
	ds, err := describeDomain(pid)
	if err != nil {
		return err
	}
	b, err := json.Marshal(ds)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(d.selfRecord(), b, 0o600)
}

func readSelfRecord(d DomainLayout) (*DomainState, error) {
	b, err := os.ReadFile(d.selfRecord())
	if err != nil {
		return nil, err
	}
	var ds DomainState
	return &ds, json.Unmarshal(b, &ds)
}

// describeDomain records a domain's init and its namespaces.
func describeDomain(pid int) (*DomainState, error) {
	ds := &DomainState{}
	var err error
	ds.Init, err = identify("init", pid)
	if err == nil {
		ds.PIDNamespace, err = nsInode(pid, "pid")
	}
	if err == nil {
		ds.NetNamespace, err = nsInode(pid, "net")
	}
	return ds, err
}

// identify returns the record of a live process.
func identify(name string, pid int) (Process, error) {
	start, err := StartTime(pid)
	return Process{Name: name, PID: pid, StartTime: start}, err
}

// Alive says whether the recorded process still runs (and is the same
// process: same pid and start time).
func (p Process) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	start, err := StartTime(p.PID)
	return err == nil && start == p.StartTime
}

// signal sends sig to the process if it is still the recorded one.
func (p Process) signal(sig syscall.Signal) {
	if p.Alive() {
		_ = syscall.Kill(p.PID, sig)
	}
}

// StartTime reads field 22 of /proc/PID/stat (clock ticks since boot), the
// start time that tells a process from a later one with the same pid; an
// exited (zombie) process is an error.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces:
	// count fields after its closing parenthesis.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, fmt.Errorf("process %d: %w", pid, errExited)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

var errExited = errors.New("exited")

// nsInode returns the inode of /proc/PID/ns/KIND.
func nsInode(pid int, kind string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, kind), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// processesInNamespace lists the host pids of every live process in the
// namespace of that kind with the given inode. Zombies do not count: they
// hold nothing but their pid until whoever adopted them (the host's init,
// once `up` has exited) reaps them.
func processesInNamespace(kind string, inode uint64) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ino, err := nsInode(pid, kind); err == nil && ino == inode {
			if _, err := StartTime(pid); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
