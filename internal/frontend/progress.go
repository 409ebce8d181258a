package frontend

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/dom0"
)

// watchProgress shows dom0's verification progress until stop is closed:
// a bar redrawn in place on a terminal, a plain line per change otherwise.
func watchProgress(c dom0.Config, session string, w io.Writer, stop <-chan struct{}) {
	terminal := isTerminal(w)
	last := dom0.Progress{Done: -1}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			if terminal && last.Done >= 0 {
				fmt.Fprintln(w)
			}
			return
		case <-tick.C:
		}
		p, ok := readProgress(c, session)
		if !ok || p == last || p.Total == 0 {
			continue
		}
		last = p
		if terminal {
			const width = 30
			filled := width * p.Done / p.Total
			fmt.Fprintf(w, "\r==> dom0 verifying [%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total)
		} else {
			fmt.Fprintf(w, "==> dom0 verifying: %d of %d packages checked\n", p.Done, p.Total)
		}
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
