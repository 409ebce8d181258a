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

	"pedos.dev/updates/internal/atomicfile"
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
			bar.set(dom0Bar, &progressBar{label: "==> dom0 verifying", done: float64(p.Done) / float64(p.Total),
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

// The UpdateVM's progress lines: its download command's ("Downloading:
// 1.5 MiB of 3.0 MiB received (50 %)") and its qfile-agent's ("qfile-agent:
// 1 of 4 files, 14.0 MiB of 28.6 MiB sent (49 %)"; below 1 MiB it counts
// bytes).
var (
	downloadProgressLine = regexp.MustCompile(`^Downloading: ([0-9]{1,12}\.[0-9]) (MiB) of ([0-9]{1,12}\.[0-9]) (MiB) received \([0-9]{1,3} %\)\n$`)
	sendProgressLine     = regexp.MustCompile(`^qfile-agent: [0-9]{1,9} of [0-9]{1,9} files, ` +
		`([0-9]{1,12}(?:\.[0-9])?) (MiB|bytes) of ([0-9]{1,12}(?:\.[0-9])?) (MiB|bytes) sent \([0-9]{1,3} %\)\n$`)
)

// updateVMPhaseEnd is the line the UpdateVM's download command or its
// qfile-agent writes when the download or the transfer has ended: the bar
// of that phase goes, and the line stays.
var updateVMPhaseEnd = regexp.MustCompile(`^(?:Downloaded [0-9]{1,9} package\(s\)|qfile-agent: in total [0-9]{1,9} files, .*)\n$`)

// parseUpdateVMProgress is the bar an UpdateVM's progress line draws on a
// terminal, labelled with its name: only the line's numbers are taken, so
// a compromised UpdateVM can draw no more than a wrong bar of its own. ok
// is false for any other line, which is shown as a line.
func parseUpdateVMProgress(vm string, untrustedLine []byte) (bar *progressBar, ok bool) {
	label, m := vm+": downloading", downloadProgressLine.FindSubmatch(untrustedLine)
	if m == nil {
		label, m = vm+": sending to dom0", sendProgressLine.FindSubmatch(untrustedLine)
	}
	if m == nil {
		return nil, false
	}
	bytes := func(number, unit []byte) float64 {
		n, _ := strconv.ParseFloat(string(number), 64)
		if string(unit) == "MiB" {
			n *= 1 << 20
		}
		return n
	}
	done, total := bytes(m[1], m[2]), bytes(m[3], m[4])
	if total <= 0 {
		return nil, false
	}
	return &progressBar{label: label, done: done / total, count: fmt.Sprintf("%s %s of %s %s", m[1], m[2], m[3], m[4])}, true
}

// progressBar is one bar of a statusLine: what counts, and how far.
type progressBar struct {
	label string  // "==> dom0 verifying", or the UpdateVM's name and what it does
	done  float64 // the part done: 0 to 1 (more is drawn as 1)
	count string  // the numbers, as they are shown after the bar
}

// A bar's [####....] is barWidth characters wide, down to minBarWidth
// where the terminal is narrow.
const (
	barWidth    = 30
	minBarWidth = 10
)

// String is the bar in at most columns characters (0: no limit): narrower
// first, then without its count (a number cut short would be a wrong
// number), and cut if even that does not fit.
func (b *progressBar) String(columns int) string {
	draw := func(width int) string {
		filled := int(float64(width) * min(max(b.done, 0), 1))
		return fmt.Sprintf("%s [%s%s]", b.label, strings.Repeat("#", filled), strings.Repeat(".", width-filled))
	}
	if columns <= 0 {
		return draw(barWidth) + " " + b.count
	}
	// What the label, the brackets, the space and the count take.
	if width := min(barWidth, columns-len(b.label)-len(b.count)-4); width >= minBarWidth {
		return draw(width) + " " + b.count
	}
	bar := draw(min(barWidth, max(minBarWidth, columns-len(b.label)-3)))
	return bar[:min(len(bar), columns)] // ASCII only: labels, digits, # and .
}

// updateVMProgress is untrustedText's status hook for the output of one
// call to the UpdateVM vm: its progress lines draw its bar, at most ten
// times a second (the lines it takes are not counted against the output's
// limit); a line that comes sooner is drawn with the next line after it,
// unless another replaced it, and from downloading to sending at once. A
// phase's last line ends its bar.
func (s *statusLine) updateVMProgress(vm string) func(untrustedLine []byte) bool {
	var drawn time.Time
	var label string
	var pending *progressBar
	return func(untrustedLine []byte) bool {
		if updateVMPhaseEnd.Match(untrustedLine) {
			s.set(updateVMBar, nil)
			label, pending = "", nil
			return false
		}
		b, ok := parseUpdateVMProgress(vm, untrustedLine)
		if ok {
			pending = b
		}
		if pending != nil && (pending.label != label || time.Since(drawn) >= 100*time.Millisecond) {
			s.set(updateVMBar, pending)
			drawn, label, pending = time.Now(), pending.label, nil
		}
		return ok
	}
}

// The bars of a statusLine, in the order they are shown.
const (
	dom0Bar = iota
	updateVMBar
	bars
)

// statusLine keeps progress bars on a terminal's last lines, one line
// each, while other lines (the UpdateVM's, which arrive meanwhile) are
// written above them: a write first erases the bars, which are drawn again
// after a complete line. A line written in parts is never cut by them.
// dom0's verification runs while the UpdateVM still sends, so both bars
// may show at once. Each is kept within the terminal's width (columns,
// asked at every redraw; nil: no limit), since a line that wraps cannot be
// erased.
type statusLine struct {
	mu      sync.Mutex
	w       io.Writer
	columns func() int
	bars    [bars]*progressBar // nil: not shown
	shown   int                // how many bar lines are on the terminal
	midLine bool               // the last write left its line open
}

func newStatusLine(terminal *os.File) *statusLine {
	return &statusLine{w: terminal, columns: func() int {
		size, err := unix.IoctlGetWinsize(int(terminal.Fd()), unix.TIOCGWINSZ)
		if err != nil || size.Col == 0 {
			return 80 // a serial console says 0: the common width, not none
		}
		return int(size.Col)
	}}
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

// end leaves the last bars on their lines, and the terminal on the next.
func (s *statusLine) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown > 0 {
		_, _ = io.WriteString(s.w, "\n")
	}
	s.bars, s.shown = [bars]*progressBar{}, 0
}

// hide erases the bar lines: the last one, then each above it, leaving
// the cursor at the start of the first.
func (s *statusLine) hide() {
	if s.shown > 0 {
		_, _ = io.WriteString(s.w, "\r\x1b[K"+strings.Repeat("\x1b[1A\x1b[K", s.shown-1))
		s.shown = 0
	}
}

func (s *statusLine) show() {
	if s.midLine {
		return
	}
	columns := 0
	if s.columns != nil {
		// One column less: a line that fills the last column wraps on
		// some terminals.
		columns = max(s.columns()-1, 0)
	}
	var lines []string
	for _, b := range s.bars {
		if b != nil {
			lines = append(lines, b.String(columns))
		}
	}
	if len(lines) > 0 {
		_, _ = io.WriteString(s.w, strings.Join(lines, "\n"))
		s.shown = len(lines)
	}
}

// readProgress returns the progress of the session, if any was written.
func readProgress(c dom0.Config, session string) (dom0.Progress, bool) {
	var p dom0.Progress
	b, err := atomicfile.ReadRegular(filepath.Join(c.Path(dom0.StateDir), dom0.ProgressFile), maxResultBytes)
	if err != nil || json.Unmarshal(b, &p) != nil || p.Session != session {
		return p, false
	}
	return p, true
}
