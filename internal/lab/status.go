package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Status describes a lab for `pedos-lab status`.
type Status struct {
	Dir       string         `json:"dir"`
	Running   bool           `json:"running"`
	UpdateVM  string         `json:"updatevm"`
	MirrorURL string         `json:"mirror_url"`
	Domains   []DomainStatus `json:"domains"`
	// Sockets are the qrexec sockets on the host, below DIR/qrexec, while
	// the lab runs.
	Sockets []string `json:"qrexec_sockets"`
	// Revision is the mirror's current revision; Snapshots map names to
	// revision numbers.
	Revision  int            `json:"revision"`
	Snapshots map[string]int `json:"snapshots"`
}

// DomainStatus is one domain: its init and everything running in it.
type DomainStatus struct {
	Name      string        `json:"name"`
	Running   bool          `json:"running"`
	Root      string        `json:"root"`
	Init      Process       `json:"init,omitzero"` // none in a domain that is down
	Processes []ProcessInfo `json:"processes"`
}

// ProcessInfo is a process in a domain.
type ProcessInfo struct {
	PID int `json:"pid"` // host pid
	// Command is its command line as /proc has it: in the UpdateVM and
	// the mirror, whatever their root chose (Print escapes it, and
	// status --json is ASCII: cmdline.WriteJSON).
	Command string `json:"command"`
}

// GetStatus reads the lab in dir.
func GetStatus(dir string) (Status, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return Status{}, err
	}
	s, err := loadState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return Status{}, notALab(dir)
	}
	if err != nil {
		return Status{}, err
	}
	l := &Lab{Layout: Layout{Dir: dir}, State: s}
	st := Status{Dir: dir, Running: s.running(), UpdateVM: s.UpdateVM, MirrorURL: l.MirrorURL() + "repo/current/",
		Snapshots: map[string]int{}}
	for _, dom := range l.domains() {
		ds := DomainStatus{Name: dom.name, Root: l.Root(dom.name), Processes: []ProcessInfo{}} // [] for scripts, not null
		if d, ok := s.Domains[dom.name]; ok {
			ds.Init, ds.Running = d.Init, d.Init.Alive()
			if ds.Running {
				for _, pid := range processesInNamespace("pid", d.PIDNamespace) {
					cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
					ds.Processes = append(ds.Processes, ProcessInfo{PID: pid,
						Command: strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))})
				}
			}
		}
		st.Domains = append(st.Domains, ds)
	}
	// A lab that is down leaves its socket files behind, which nothing
	// answers: listing them would say the opposite of "down".
	if st.Running {
		st.Sockets, _ = filepath.Glob(filepath.Join(l.qrexecDir(), "*", "*.sock"))
	}
	st.Revision, _ = l.currentRevision()
	links, _ := os.ReadDir(filepath.Join(l.repoDir(), snapshotsDir))
	for _, e := range links {
		if target, err := os.Readlink(filepath.Join(l.repoDir(), snapshotsDir, e.Name())); err == nil {
			var n int
			fmt.Sscanf(filepath.Base(target), "%d", &n)
			st.Snapshots[e.Name()] = n
		}
	}
	return st, nil
}

// Print writes the status for people.
func (st Status) Print(w io.Writer) {
	state := "down"
	switch {
	case st.Running:
		state = "up"
	case slices.ContainsFunc(st.Domains, func(d DomainStatus) bool { return d.Running }):
		state = "broken (a domain or a qrexec service of it ended: pedos-lab up --dir " + st.Dir + " starts the lab afresh)"
	}
	fmt.Fprintf(w, "lab %s: %s (UpdateVM %s)\n", st.Dir, state, st.UpdateVM)
	var snaps []string
	for name, n := range st.Snapshots {
		snaps = append(snaps, fmt.Sprintf("%s=%s", name, revisionName(n)))
	}
	sort.Strings(snaps)
	fmt.Fprintf(w, "mirror: %s (revision %s; snapshots: %s)\n", st.MirrorURL, revisionName(st.Revision), strings.Join(snaps, " "))
	for _, d := range st.Domains {
		state := "stopped"
		if d.Running {
			state = fmt.Sprintf("running, init pid %d", d.Init.PID)
		}
		fmt.Fprintf(w, "domain %s: %s; root %s\n", d.Name, state, d.Root)
		for _, p := range d.Processes {
			fmt.Fprintf(w, "  %7d  %s\n", p.PID, escapeNonPrintable(p.Command))
		}
	}
	for _, s := range st.Sockets {
		fmt.Fprintf(w, "qrexec socket: %s\n", s)
	}
}

// escapeNonPrintable escapes what a terminal would act on in an untrusted
// string, as a Go string literal would: a command line in the UpdateVM or
// the mirror is the attacker's to choose, escape sequences and newlines
// included, and status prints it on the host's terminal.
func escapeNonPrintable(untrusted string) string {
	var b strings.Builder
	for len(untrusted) > 0 {
		r, size := utf8.DecodeRuneInString(untrusted)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, untrusted[0])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			quoted := strconv.QuoteRune(r)
			b.WriteString(quoted[1 : len(quoted)-1])
		}
		untrusted = untrusted[size:]
	}
	return b.String()
}
