package frontend

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
)

// /dev/null is a character device but no terminal: a cron job's or a
// unit's stdin must get the "run again with -y" advice, which a terminal
// does not need.
func TestIsTerminal(t *testing.T) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if isTerminal(devNull) || isTerminal(strings.NewReader("")) {
		t.Error("/dev/null or a reader is taken for a terminal")
	}
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	terminal, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer terminal.Close()
	if !isTerminal(terminal) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
}

// On a terminal, other lines written while the bar shows go above it: the
// bar is erased first and drawn again under a complete line, never in the
// middle of one (the UpdateVM's transfer progress had been glued to it).
func TestStatusLineKeepsTheBarBelow(t *testing.T) {
	var out strings.Builder
	s := &statusLine{w: &out}
	s.set("[#.] 1/2")
	fmt.Fprint(s, "vm: half a ")
	s.set("[##] 2/2") // not drawn inside the open line
	fmt.Fprint(s, "line\nvm: next\n")
	s.end()
	want := "[#.] 1/2" + "\r\x1b[K" + "vm: half a " + "line\nvm: next\n" + "[##] 2/2" + "\n"
	if out.String() != want {
		t.Errorf("terminal got %q, want %q", out.String(), want)
	}
	fmt.Fprint(s, "after\n")
	if !strings.HasSuffix(out.String(), "2/2\nafter\n") {
		t.Errorf("after end, lines pass as they are: %q", out.String())
	}
}

// The last line shown is the result's count: the progress file dom0's
// workers write may end behind it (their renames race), and a bar left at
// 5/12 over a delivery of 12 checked packages is wrong progress.
func TestWatchProgressEndsWithTheResultsCount(t *testing.T) {
	c := dom0.Config{Root: t.TempDir()}
	if err := os.MkdirAll(c.Path(dom0.StateDir), 0o700); err != nil {
		t.Fatal(err)
	}
	stale, err := json.Marshal(dom0.Progress{Session: "s1", Done: 5, Total: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Path(dom0.StateDir), dom0.ProgressFile), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, terminal := range []bool{false, true} {
		var out testbin.Buffer
		var bar *statusLine
		if terminal {
			bar = &statusLine{w: &out}
		}
		finished := make(chan dom0.Progress, 1)
		done := make(chan struct{})
		go func() { watchProgress(c, "s1", &out, bar, finished); close(done) }()
		// The watcher reads the file every 200 ms: wait until it has shown it.
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "5") && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		finished <- dom0.Progress{Session: "s1", Done: 12, Total: 12}
		<-done
		want := "==> dom0 verifying: 5 of 8 received packages checked\n==> dom0 verifying: 12 of 12 received packages checked\n"
		if terminal {
			want = "==> dom0 verifying [" + strings.Repeat("#", 18) + strings.Repeat(".", 12) + "] 5/8 received" + "\r\x1b[K" +
				"==> dom0 verifying [" + strings.Repeat("#", 30) + "] 12/12 received" + "\n"
		}
		if out.String() != want {
			t.Errorf("terminal %t: got %q, want %q", terminal, out.String(), want)
		}
	}
}
