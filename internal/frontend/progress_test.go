package frontend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
)

// On a terminal, other lines written while the bar shows go above it: the
// bar is erased first and drawn again under a complete line, never in the
// middle of one (the UpdateVM's transfer progress had been glued to it).
func TestStatusLineKeepsTheBarBelow(t *testing.T) {
	var out strings.Builder
	s := &statusLine{w: &out}
	bar := func(done int) *progressBar {
		return &progressBar{label: "b", done: float64(done) / 2, count: fmt.Sprint(done)}
	}
	s.set(dom0Bar, bar(1))
	fmt.Fprint(s, "vm: half a ")
	s.set(dom0Bar, bar(2)) // not drawn inside the open line
	fmt.Fprint(s, "line\nvm: next\n")
	s.end()
	half, full := "b ["+strings.Repeat("#", 15)+strings.Repeat(".", 15)+"] 1", "b ["+strings.Repeat("#", 30)+"] 2"
	want := half + "\r\x1b[K" + "vm: half a " + "line\nvm: next\n" + full + "\n"
	if out.String() != want {
		t.Errorf("terminal got %q, want %q", out.String(), want)
	}
	fmt.Fprint(s, "after\n")
	if !strings.HasSuffix(out.String(), "2\nafter\n") {
		t.Errorf("after end, lines pass as they are: %q", out.String())
	}
}

// dom0's bar and the UpdateVM's take a line each, both erased before
// another line is written; each stays within the terminal's width as it
// is at each redraw, without its count if that does not fit whole.
func TestStatusLineTwoBars(t *testing.T) {
	var out strings.Builder
	columns := 81
	s := &statusLine{w: &out, columns: func() int { return columns }}
	dom0 := "==> dom0 verifying [" + strings.Repeat("#", 15) + strings.Repeat(".", 15) + "] 1/2 received"
	vm := "sys-test: sending to dom0 [" + strings.Repeat("#", 22) + strings.Repeat(".", 8) + "]"
	s.set(dom0Bar, &progressBar{label: "==> dom0 verifying", done: 0.5, count: "1/2 received"})
	s.set(updateVMBar, &progressBar{label: "sys-test: sending to dom0", done: 0.75, count: "3.0 MiB of 4.0 MiB"})
	fmt.Fprint(s, "line\n")
	columns = 41
	s.set(updateVMBar, nil)
	want := dom0 + "\r\x1b[K" +
		dom0 + "\n" + vm + " 3.0 MiB of 4.0 MiB" + "\r\x1b[K\x1b[1A\x1b[K" +
		"line\n" + dom0 + "\n" + vm + " 3.0 MiB of 4.0 MiB" + "\r\x1b[K\x1b[1A\x1b[K" +
		"==> dom0 verifying [#########..........]"
	if out.String() != want {
		t.Errorf("terminal got\n%q\nwant\n%q", out.String(), want)
	}
	// Narrower, the bar shrinks first, down to 10; then its count goes
	// whole; then the line is cut.
	bar := &progressBar{label: "x", done: 0.5, count: "12.3 MiB"}
	for _, tc := range []struct {
		columns int
		want    string
	}{
		{35, "x [" + strings.Repeat("#", 11) + strings.Repeat(".", 11) + "] 12.3 MiB"},
		{23, "x [#####.....] 12.3 MiB"},
		{20, "x [" + strings.Repeat("#", 8) + strings.Repeat(".", 8) + "]"},
		{10, "x [#####.."},
	} {
		if got := bar.String(tc.columns); got != tc.want || len(got) > tc.columns {
			t.Errorf("in %d columns: %q, want %q", tc.columns, got, tc.want)
		}
	}
}

// Only the exact progress lines of the UpdateVM's download command and of
// its qfile-agent become its bar, and only their numbers are taken.
func TestParseUpdateVMProgress(t *testing.T) {
	for _, tc := range []struct {
		line      string
		want      string // "": shown as a line
		wantFilld int
	}{
		{"Downloading: 1.5 MiB of 3.0 MiB received (50 %)\n", "vm: downloading", 15},
		{"qfile-agent: 1 of 4 files, 14.0 MiB of 28.0 MiB sent (50 %)\n", "vm: sending to dom0", 15},
		{"qfile-agent: 1 of 4 files, 512 bytes of 2048 bytes sent (25 %)\n", "vm: sending to dom0", 7},
		// More than planned, as a compromised UpdateVM may claim: a full
		// bar, even with numbers near the pattern's limits.
		{"qfile-agent: 9 of 4 files, 99.0 MiB of 28.0 MiB sent (354 %)\n", "vm: sending to dom0", 30},
		{"Downloading: 999999999999.9 MiB of 999999999999.9 MiB received (100 %)\n", "vm: downloading", 30},
		{"qfile-agent: 1 of 1 files, 999999999999 MiB of 1 bytes sent (0 %)\n", "vm: sending to dom0", 30},
		{"Downloading: 1.5 MiB of 3.0 MiB received (50 %)", "", 0}, // no newline: not a complete line
		{"Downloading: 1.5 MiB received\n", "", 0},                 // no total
		{"Downloading: 1.5 MiB of 0.0 MiB received (0 %)\n", "", 0},
		{"Downloading: 1.5 MiB of 3.0 MiB received (50 %) \x1b[2J\n", "", 0},
		{"==> Downloading: 1.5 MiB of 3.0 MiB received (50 %)\n", "", 0},
		{"qfile-agent: in total 4 files, 28.6 MiB sent\n", "", 0},
		{"Downloading: 1e9 MiB of 3.0 MiB received (50 %)\n", "", 0},
		// Each verb with its own prefix only.
		{"Downloading: 1.5 MiB of 3.0 MiB sent (50 %)\n", "", 0},
		{"qfile-agent: 1 of 4 files, 1.5 MiB of 3.0 MiB received (50 %)\n", "", 0},
	} {
		bar, ok := parseUpdateVMProgress("vm", []byte(tc.line))
		if !ok {
			if tc.want != "" {
				t.Errorf("%q: not taken as progress", tc.line)
			}
			continue
		}
		got := bar.String(0)
		want := tc.want + " [" + strings.Repeat("#", tc.wantFilld) + strings.Repeat(".", barWidth-tc.wantFilld) + "] "
		if tc.want == "" || !strings.HasPrefix(got, want) || strings.ContainsFunc(got[len(want):], func(r rune) bool { return !strings.ContainsRune("0123456789. MiBbytesof", r) }) {
			t.Errorf("%q: got %q, want %q and the line's numbers", tc.line, got, want)
		}
	}
}

// FuzzUpdateVMProgress: whatever line the UpdateVM sends, its bar draws
// without a panic, within the columns asked, in printable ASCII (seed
// corpus: testdata/fuzz/FuzzUpdateVMProgress).
func FuzzUpdateVMProgress(f *testing.F) {
	f.Fuzz(func(t *testing.T, untrustedLine []byte, columns int) {
		bar, ok := parseUpdateVMProgress("sys-test", untrustedLine)
		if !ok {
			return
		}
		got := bar.String(columns)
		if columns > 0 && len(got) > columns || strings.ContainsFunc(got, func(r rune) bool { return r < ' ' || r > '~' }) {
			t.Errorf("%q in %d columns: %q", untrustedLine, columns, got)
		}
	})
}

// runOnATerminal runs an update whose UpdateVM reports download and transfer
// progress, with stderr a terminal of type term, and returns what the
// terminal was sent and the exit status.
func runOnATerminal(t *testing.T, term string) (string, int) {
	t.Setenv("TERM", term)
	master, terminal := testbin.OpenPTY(t)
	var shown testbin.Buffer
	read := make(chan struct{})
	go func() { io.Copy(&shown, master); close(read) }()
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, stderr io.Writer) int {
		io.WriteString(stderr, "Downloading: 1.0 MiB of 2.0 MiB received (50 %)\nDownloaded 1 package(s)\n")
		io.WriteString(stderr, "qfile-agent: 1 of 2 files, 3.0 MiB of 6.0 MiB sent (50 %)\n")
		// Too soon to be drawn at once; drawn with the next line, 150 ms on.
		io.WriteString(stderr, "qfile-agent: 1 of 2 files, 4.5 MiB of 6.0 MiB sent (75 %)\n")
		time.Sleep(150 * time.Millisecond)
		io.WriteString(stderr, "still sending\n")
		deliver(t, tr.config, argv, 0, onePackage)
		return 0
	}
	o, err := ParseArgs([]string{"-y"})
	if err != nil {
		t.Fatal(err)
	}
	code := Run(context.Background(), o, Env{Config: tr.config, VM: tr.vm, Tools: tr.tools,
		Stdin: strings.NewReader(""), Stdout: tr.stdout, Stderr: terminal, DownloadCommand: "pedos-download-dom0-updates"})
	terminal.Close()
	<-read
	return shown.String(), code
}

// On a terminal, the UpdateVM's download and transfer progress lines are
// drawn as its bar, not printed; its other lines are printed as ever.
func TestRunDrawsUpdateVMProgressOnATerminal(t *testing.T) {
	out, code := runOnATerminal(t, "xterm")
	for _, want := range []string{"sys-test: downloading [", "] 1.0 MiB of 2.0 MiB", "sys-test: Downloaded 1 package(s)",
		"sys-test: sending to dom0 [", "] 3.0 MiB of 6.0 MiB", "] 4.5 MiB of 6.0 MiB", "sys-test: still sending", "==> dom0 verifying ["} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal lacks %q", want)
		}
	}
	if code != ExitOK || strings.Contains(out, "sys-test: Downloading:") || strings.Contains(out, "sys-test: qfile-agent: 1 of 2") {
		t.Errorf("exit %d; the progress lines were printed as lines; terminal:\n%q", code, out)
	}
	// The download's last line ends its bar: not drawn again under it.
	if strings.Contains(out, "Downloaded 1 package(s)\r\nsys-test: downloading [") {
		t.Errorf("the download's bar outlived its end; terminal:\n%q", out)
	}
}

// TERM=dumb: a terminal that acts on no escape sequence gets every line as a
// line, and no bar.
func TestRunPrintsUpdateVMProgressOnADumbTerminal(t *testing.T) {
	out, code := runOnATerminal(t, "dumb")
	for _, want := range []string{"sys-test: Downloading: 1.0 MiB of 2.0 MiB received (50 %)", "sys-test: qfile-agent: 1 of 2 files, 4.5 MiB of 6.0 MiB sent (75 %)", "sys-test: still sending"} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal lacks the line %q", want)
		}
	}
	if code != ExitOK || strings.Contains(out, "\x1b[") || strings.Contains(out, "sys-test: downloading [") {
		t.Errorf("exit %d; an escape sequence or a bar reached a dumb terminal:\n%q", code, out)
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
