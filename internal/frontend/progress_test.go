package frontend

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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
