package frontend

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/dom0"
)

// watchProgress shows dom0's verification progress until finished
// delivers: a bar redrawn in place on a terminal (bar, not nil), a plain
// line per change on w otherwise. What finished delivers is drawn last if
// it counts anything (the result's count: the progress file may lag
// behind it, its last writes racing each other).
func watchProgress(c dom0.Config, session string, w io.Writer, bar *statusLine, finished <-chan dom0.Progress) {
	last := dom0.Progress{Done: -1}
	show := func(p dom0.Progress) {
		if p == last || p.Total == 0 {
			return
		}
		last = p
		// Total is what has arrived so far, not the delivery's size (dom0.Progress).
		if bar != nil {
			const width = 30
			filled := width * p.Done / p.Total
			bar.set(fmt.Sprintf("==> dom0 verifying [%s%s] %d/%d received", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total))
		} else {
			fmt.Fprintf(w, "==> dom0 verifying: %d of %d received packages checked\n", p.Done, p.Total)
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case final := <-finished:
			show(final)
			if bar != nil {
				bar.end()
			}
			return
		case <-tick.C:
		}
		if p, ok := readProgress(c, session); ok {
			show(p)
		}
	}
}

// statusLine keeps a progress bar on a terminal's last line while other
// lines (the UpdateVM's, which arrive meanwhile) are written above it: a
// write first clears the bar, which is drawn again after a complete line.
// A line written in parts is never cut by it.
type statusLine struct {
	mu      sync.Mutex
	w       io.Writer
	bar     string // "" before the first set and after end
	shown   bool   // the bar is on the terminal's last line
	midLine bool   // the last write left its line open
}

func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hide()
	n, err := s.w.Write(p)
	if len(p) > 0 {
		s.midLine = p[len(p)-1] != '\n'
	}
	s.show()
	return n, err
}

// set draws bar in place of the one shown.
func (s *statusLine) set(bar string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hide()
	s.bar = bar
	s.show()
}

// end leaves the last bar on its line, and the terminal on the next.
func (s *statusLine) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		_, _ = io.WriteString(s.w, "\n")
	}
	s.bar, s.shown = "", false
}

func (s *statusLine) hide() {
	if s.shown {
		_, _ = io.WriteString(s.w, "\r\x1b[K") // to the line's start, then erase it
		s.shown = false
	}
}

func (s *statusLine) show() {
	if s.bar != "" && !s.midLine {
		_, _ = io.WriteString(s.w, s.bar)
		s.shown = true
	}
}

// isTerminal says whether stream (stdin, stdout or stderr) is a terminal:
// one with terminal settings, not any character device (/dev/null, a
// cron job's or a unit's stdin, is one too, and dnf cannot ask there).
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// readProgress returns the progress of the session, if any was written.
func readProgress(c dom0.Config, session string) (dom0.Progress, bool) {
	var p dom0.Progress
	b, err := os.ReadFile(filepath.Join(c.Path(dom0.StateDir), dom0.ProgressFile))
	if err != nil || json.Unmarshal(b, &p) != nil || p.Session != session {
		return p, false
	}
	return p, true
}
