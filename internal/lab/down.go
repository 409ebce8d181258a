package lab

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Down stops the lab in dir: every process it started, by pid, and with
// them the namespaces, the veth pair and the mounts, which exist only as
// long as the domains' processes do. The lab directory stays, for
// inspection and for the next Up. It works whatever state a crash left.
func Down(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := requireLab(dir); err != nil {
		return err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := loadState(dir)
	if err != nil {
		return err
	}
	return (&Lab{Layout: Layout{Dir: dir}, State: s}).downLocked(s)
}

// Down stops this lab (see the function Down).
func (l *Lab) Down() error { return Down(l.Dir) }

// downLocked stops the domains s records, and any init that recorded only
// itself, under the lab directory's lock; it fails naming whatever is still
// alive in their namespaces.
func (l *Lab) downLocked(s *State) error {
	domains := l.withSelfRecorded(s.Domains)
	// SIGTERM first: each init stops its services (the qrexec daemon and
	// agent end their calls) and exits.
	for _, d := range domains {
		d.Init.signal(syscall.SIGTERM)
	}
	waitGone(domains, 5*time.Second)
	// Killing a pid namespace's init makes the kernel kill every other
	// process in it, gpg-agents and stray commands included; the network
	// namespace and its end of the veth pair go with its last process.
	for _, d := range domains {
		d.Init.signal(syscall.SIGKILL)
	}
	waitGone(domains, 5*time.Second)
	if left := leftInNamespaces(domains); len(left) > 0 {
		return fmt.Errorf("lab %s: not everything stopped:\n  %s", l.Dir, strings.Join(left, "\n  "))
	}
	s.Domains = map[string]*DomainState{}
	return s.save(l.Dir)
}

// withSelfRecorded returns the recorded domains plus every live init that
// recorded itself (RunInit) but is not among them: one that `up` started
// but had not yet recorded when it was killed.
func (l *Lab) withSelfRecorded(recorded map[string]*DomainState) map[string]*DomainState {
	domains := maps.Clone(recorded)
	if domains == nil {
		domains = map[string]*DomainState{}
	}
	dirs, _ := os.ReadDir(filepath.Join(l.Dir, "domains"))
	for _, e := range dirs {
		self, err := readSelfRecord(l.Domain(e.Name()))
		if err == nil && self.Init.Alive() && (domains[e.Name()] == nil || domains[e.Name()].Init != self.Init) {
			domains[e.Name()+" (self-recorded)"] = self
		}
	}
	return domains
}

// leftInNamespaces names, per domain, the live processes still in its pid
// or network namespace.
func leftInNamespaces(domains map[string]*DomainState) []string {
	var left []string
	for name, d := range domains {
		for _, kind := range []struct {
			ns    string
			inode uint64
		}{{"pid", d.PIDNamespace}, {"net", d.NetNamespace}} {
			if kind.inode == 0 {
				continue
			}
			if pids := processesInNamespace(kind.ns, kind.inode); len(pids) > 0 {
				left = append(left, fmt.Sprintf("domain %s: processes %v still in its %s namespace", name, pids, kind.ns))
			}
		}
	}
	return left
}

// waitGone waits until no init and nothing in the domains' pid namespaces
// runs, or the timeout passes.
func waitGone(domains map[string]*DomainState, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		busy := false
		for _, d := range domains {
			if d.Init.Alive() || (d.PIDNamespace != 0 && len(processesInNamespace("pid", d.PIDNamespace)) > 0) {
				busy = true
			}
		}
		if !busy {
			return
		}
	}
}
