package frontend

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Downloading hello-1.1-1.noarch.rpm\n", "Downloading hello-1.1-1.noarch.rpm\n"},
		{"a\tb\n", "a\tb\n"},
		{"\033]0;pwned\007\033[2J", `\x1b]0;pwned\x07\x1b[2J`},
		{"100%\r50%", `100%\x0d50%`},
		{"del\x7f", `del\x7f`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
		{"Größe: 3 MiB, 軟體", "Größe: 3 MiB, 軟體"},
		{"csi \u009b2J", `csi \u009b2J`},
		{"evil\u202eexe.txt", `evil\u202eexe.txt`},
	} {
		if got := string(printable([]byte(tc.in))); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// dom0's own messages are one line each.
	if got, want := oneLine("a\tb\nc\033[2J"), `a\x09b\x0ac\x1b[2J`; got != want {
		t.Errorf("oneLine = %q, want %q", got, want)
	}
}

// A step and a warning name paths below --root, which may hold a newline
// or an escape: each is still one line, as oneLine shows it.
func TestStepsAndWarningsAreOneLine(t *testing.T) {
	var out strings.Builder
	(&runner{env: Env{Stderr: &out}}).say("Emptying %s", "/lab/a\nb\033[2J")
	warnf(&out, "%s is odd", "/lab/c\nd")
	if want := "==> Emptying /lab/a\\x0ab\\x1b[2J\npedos-dom0-update: warning: /lab/c\\x0ad is odd\n"; out.String() != want {
		t.Errorf("shown %q, want %q", out.String(), want)
	}
}

// Lines are written whole, even when they arrive in pieces, so that an
// escape split across writes is still escaped and lines of the UpdateVM's
// stdout and stderr do not cut into each other.
func TestUntrustedTextLines(t *testing.T) {
	var out bytes.Buffer
	w := newUntrustedText(&out, "")
	for _, piece := range []string{"one\ntw", "o\033", "[2J\nthree"} {
		if _, err := w.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); got != "one\n"+`two\x1b[2J`+"\n" {
		t.Errorf("before Flush: %q", got)
	}
	if err := w.Flush(); err != nil || !strings.HasSuffix(out.String(), "\nthree\n") {
		t.Errorf("after Flush: %q, %v", out.String(), err)
	}
	long := strings.Repeat("x", 3*maxLineBytes)
	out.Reset()
	_, _ = w.Write([]byte(long))
	if out.Len() != len(long)+1 || !strings.HasSuffix(out.String(), "x\n") {
		t.Errorf("a line without a newline was held back: %d of %d bytes written", out.Len(), len(long))
	}
}

// What reaches the terminal is UTF-8 with no rune a terminal acts on but
// newline and tab.
func FuzzUntrustedText(f *testing.F) {
	f.Add([]byte("\033]0;pwned\007\033[2J"))
	f.Add([]byte("ok\n\xc2\x9b\xe2\x80\xae\xff"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		var out bytes.Buffer
		w := newUntrustedText(&out, "sys-test: ")
		_, _ = w.Write(untrusted)
		_ = w.Flush()
		if !utf8.Valid(out.Bytes()) {
			t.Fatalf("%q: output %q is not UTF-8", untrusted, out.Bytes())
		}
		for _, r := range out.String() {
			if r != '\n' && r != '\t' && !unicode.IsPrint(r) {
				t.Fatalf("%q: output %q holds %U", untrusted, out.Bytes(), r)
			}
		}
		for line := range strings.Lines(out.String()) {
			if !strings.HasPrefix(line, "sys-test: ") {
				t.Fatalf("%q: output line %q lacks the UpdateVM's name", untrusted, line)
			}
		}
	})
}

// A fake qrexec-client, as the real one would run the UpdateVM's command:
// whatever the UpdateVM prints reaches dom0's terminal escaped.
func TestUpdateVMOutputIsEscaped(t *testing.T) {
	code, tr := listWithUpdateVM(t, `printf '\033]0;pwned\007\033[2J' >&2`, `printf 'hello.noarch \033[31m1.1-1\n'`)
	stdout, stderr := tr.stdout.String(), tr.stderr.String()
	if code != ExitOK || strings.Contains(stdout+stderr, "\033") {
		t.Fatalf("exit %d; an escape reached the terminal:\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, `\x1b]0;pwned\x07\x1b[2J`) || !strings.Contains(stdout, `hello.noarch \x1b[31m1.1-1`) {
		t.Errorf("the UpdateVM's output is not shown escaped:\nstdout %q\nstderr %q", stdout, stderr)
	}
}

// What an UpdateVM writes past the limit is not shown, only counted, and
// End says how much: a flood cannot fill the person's terminal. The limit
// counts what is shown, in whole lines, the prefix and escapes included
// (a flood of empty lines or escapes grows with them).
func TestUntrustedTextLimit(t *testing.T) {
	var out strings.Builder
	text := newUntrustedText(&out, "vm: ")
	text.limit = 25 // "vm: 0123456789abcdef\n" is 21 bytes, "vm: more\n" 9 more
	for _, piece := range []string{"0123456", "789abc", "def\nmore\n", "\x1b\n"} {
		if n, err := text.Write([]byte(piece)); n != len(piece) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", piece, n, err)
		}
	}
	if err := text.End(); err != nil {
		t.Fatal(err)
	}
	if want := "vm: 0123456789abcdef\nvm: [7 more bytes of output not shown: over 25]\n"; out.String() != want {
		t.Errorf("shown %q, want %q", out.String(), want)
	}
}

// Past the limit, a status hook still sees every complete line (the
// UpdateVM's bar goes on), and what it does not take is counted as before.
func TestUntrustedTextStatusPastTheLimit(t *testing.T) {
	var out strings.Builder
	var taken []string
	text := newUntrustedText(&out, "vm: ")
	text.limit = 25
	text.status = func(line []byte) bool {
		if bytes.HasPrefix(line, []byte("progress ")) {
			taken = append(taken, string(line))
			return true
		}
		return false
	}
	for _, piece := range []string{"0123456789abcdef\n", "more\n", "progress 1\n", "xy\nprog", "ress 2\n"} {
		if _, err := text.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
	}
	if err := text.End(); err != nil {
		t.Fatal(err)
	}
	if want := "vm: 0123456789abcdef\nvm: [8 more bytes of output not shown: over 25]\n"; out.String() != want || strings.Join(taken, "") != "progress 1\nprogress 2\n" {
		t.Errorf("shown %q, taken %q; want %q and both progress lines", out.String(), taken, want)
	}
}

// The UpdateVM's stderr in one call is shown up to maxLogBytes.
func TestUpdateVMOutputIsCapped(t *testing.T) {
	code, tr := listWithUpdateVM(t, `head -c 3000000 /dev/zero | tr '\0' 'x' >&2`, `printf 'hello.noarch 1.1-1\n'`)
	stderr := tr.stderr.String()
	shown := strings.Count(stderr, "x")
	if code != ExitOK || len(stderr) > maxLogBytes+maxLogBytes/10 || shown > maxLogBytes || shown < maxLogBytes*9/10 ||
		!strings.Contains(stderr, fmt.Sprintf("[%d more bytes of output not shown: over %d]", 3000000-shown, maxLogBytes)) {
		t.Errorf("exit %d, %d bytes shown of the UpdateVM's 3000000, ending %q", code, len(stderr), stderr[max(0, len(stderr)-200):])
	}
}

// A query's listing with --json (on stderr, stdout being the JSON report)
// is a repository's worth, not capped at the log's 1 MiB.
func TestJSONQueryListingIsNotCappedAsALog(t *testing.T) {
	code, tr := listWithUpdateVM(t, ":", `head -c 3000000 /dev/zero | tr '\0' 'x'`, "--json")
	if stderr := tr.stderr.String(); code != ExitOK || strings.Count(stderr, "x") != 3000000 || strings.Contains(stderr, "not shown") {
		t.Errorf("exit %d, %d of the listing's 3000000 bytes shown, ending %q", code, strings.Count(stderr, "x"), stderr[max(0, len(stderr)-200):])
	}
}

// listWithUpdateVM runs pedos-dom0-update --action=list (and extra)
// against an UpdateVM (a stand-in qrexec-client) that runs syncCommand for
// the --sync call, after reading dom0's configuration, and listCommand for
// the list.
func listWithUpdateVM(t *testing.T, syncCommand, listCommand string, extra ...string) (int, *testRun) {
	t.Helper()
	client := filepath.Join(t.TempDir(), "qrexec-client")
	script := "#!/bin/sh\ncase \"$3\" in\n*--sync*) cat >/dev/null; " + syncCommand + " ;;\n*) " + listCommand + " ;;\nesac\n"
	if err := os.WriteFile(client, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tr := newTestRun(t, nil)
	o, err := ParseArgs(append([]string{"--action=list"}, extra...))
	if err != nil {
		t.Fatal(err)
	}
	code := Run(t.Context(), o, Env{Config: tr.config, VM: QrexecCaller{Client: client, Timeout: time.Minute},
		Tools: tr.tools, Stdout: tr.stdout, Stderr: tr.stderr, DownloadCommand: "pedos-download-dom0-updates"})
	return code, tr
}
