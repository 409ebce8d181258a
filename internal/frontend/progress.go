package frontend

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
			bar.set(dom0Bar, &progressBar{label: "==> dom0 verifying", done: int64(p.Done), total: int64(p.Total),
				count: fmt.Sprintf("%d/%d received", p.Done, p.Total)})
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

// updateVMProgressLine is a progress line of the UpdateVM's download
// command ("Downloading: 1.5 MiB of 3.0 MiB received (50 %)") or of its
// qfile-agent ("qfile-agent: 1 of 4 files, 14.0 MiB of 28.6 MiB sent
// (49 %)"; below 1 MiB it counts bytes).
var updateVMProgressLine = regexp.MustCompile(`^(?:Downloading: |qfile-agent: [0-9]{1,9} of [0-9]{1,9} files, )` +
	`([0-9]{1,12}(?:\.[0-9])?) (MiB|bytes) of ([0-9]{1,12}(?:\.[0-9])?) (MiB|bytes) (received|sent) \([0-9]{1,3} %\)\n$`)

// parseUpdateVMProgress is the bar an UpdateVM's progress line draws on a terminal,
// labelled with its name: only the line's numbers are taken, so a
// compromised UpdateVM can draw no more than a wrong bar of its own.
// ok is false for any other line, which is shown as a line.
func parseUpdateVMProgress(vm string, untrustedLine []byte) (bar *progressBar, ok bool) {
	m := updateVMProgressLine.FindSubmatch(untrustedLine)
	if m == nil {
		return nil, false
	}
	bytes := func(number, unit []byte) int64 {
		n, _ := strconv.ParseFloat(string(number), 64)
		if string(unit) == "MiB" {
			n *= 1 << 20
		}
		return int64(n)
	}
	done, total := bytes(m[1], m[2]), bytes(m[3], m[4])
	if total <= 0 {
		return nil, false
	}
	label := vm + ": downloading"
	if string(m[5]) == "sent" {
		label = vm + ": sending to dom0"
	}
	return &progressBar{label: label, done: min(done, total), total: total,
		count: fmt.Sprintf("%s %s of %s %s", m[1], m[2], m[3], m[4])}, true
}

// progressBar is one bar of a statusLine: what counts, and how far.
type progressBar struct {
	label       string // "==> dom0 verifying", or the UpdateVM's name and what it does
	done, total int64  // 0 <= done <= total, total > 0
	count       string // the numbers, as they are shown after the bar
}

func (b *progressBar) String(width int) string {
	filled := int(int64(width) * min(b.done, b.total) / b.total)
	return fmt.Sprintf("%s [%s%s] %s", b.label, strings.Repeat("#", filled), strings.Repeat(".", width-filled), b.count)
}

// The bars of a statusLine, in the order they are shown.
const (
	dom0Bar = iota
	updateVMBar
	bars
)

// statusLine keeps progress bars on a terminal's last line while other
// lines (the UpdateVM's, which arrive meanwhile) are written above it: a
// write first clears the bars, which are drawn again after a complete
// line. A line written in parts is never cut by them. dom0's verification
// runs while the UpdateVM still sends, so both bars may show at once:
// each is then narrower, and the line is cut at the terminal's width
// (columns, 0 if unknown), since a line that wraps cannot be erased.
type statusLine struct {
	mu      sync.Mutex
	w       io.Writer
	columns int
	bars    [bars]*progressBar // nil: not shown
	shown   bool               // the bars are on the terminal's last line
	midLine bool               // the last write left its line open
}

func newStatusLine(terminal *os.File) *statusLine {
	s := &statusLine{w: terminal}
	if size, err := unix.IoctlGetWinsize(int(terminal.Fd()), unix.TIOCGWINSZ); err == nil {
		s.columns = int(size.Col)
	}
	return s
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

// set draws bar (nil: none) as bar number i in place of the one shown.
func (s *statusLine) set(i int, bar *progressBar) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hide()
	s.bars[i] = bar
	s.show()
}

// end leaves the last bars on their line, and the terminal on the next.
func (s *statusLine) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		_, _ = io.WriteString(s.w, "\n")
	}
	s.bars, s.shown = [bars]*progressBar{}, false
}

func (s *statusLine) hide() {
	if s.shown {
		_, _ = io.WriteString(s.w, "\r\x1b[K") // to the line's start, then erase it
		s.shown = false
	}
}

func (s *statusLine) show() {
	var shown []*progressBar
	for _, b := range s.bars {
		if b != nil {
			shown = append(shown, b)
		}
	}
	if len(shown) == 0 || s.midLine {
		return
	}
	width := 30
	if len(shown) > 1 {
		width = 10
	}
	var line []string
	for _, b := range shown {
		line = append(line, b.String(width))
	}
	text := strings.Join(line, "   ")
	if s.columns > 1 && len(text) >= s.columns {
		text = text[:s.columns-1] // ASCII only: the labels, digits and #.
	}
	_, _ = io.WriteString(s.w, text)
	s.shown = true
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
