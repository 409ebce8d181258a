package cmdline

import (
	"os"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

// What a terminal acts on becomes '_', whole runes stay whole, and a rune
// split between writes is judged whole: a C1 control sent as its two UTF-8
// bytes in two messages (U+009B, CSI) is caught all the same.
func TestEscapeFilter(t *testing.T) {
	for _, c := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"text", []string{"héllo wörld\tok\n"}, "héllo wörld\tok\n"},
		{"CSI clear screen", []string{"A\x1b[2JB\n"}, "A_[2JB\n"},
		{"title (OSC … BEL)", []string{"\x1b]0;title\x07"}, "_]0;title_"},
		{"carriage return and DEL", []string{"a\rb\x7f"}, "a_b_"},
		{"C1 CSI in UTF-8, split", []string{"x\xc2", "\x9b2J"}, "x_2J"},
		{"bidirectional override", []string{"a\u202eb"}, "a_b"},
		{"not UTF-8", []string{"\xff\xfe"}, "__"},
		{"split multi-byte rune", []string{"\xe2\x82", "\xac"}, "€"},
		{"unfinished at the end", []string{"ok\xe2\x82"}, "ok__"},
	} {
		var out strings.Builder
		f := &EscapeFilter{W: &out}
		for _, w := range c.writes {
			if n, err := f.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("%s: Write = %d, %v", c.name, n, err)
			}
		}
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want {
			t.Errorf("%s: %q, want %q", c.name, out.String(), c.want)
		}
	}
}

// /dev/null is a character device but no terminal: a cron job's or a
// unit's stdin must get the "run again with -y" advice, which a terminal
// does not need.
func TestIsTerminal(t *testing.T) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if IsTerminal(devNull) || IsTerminal(strings.NewReader("")) {
		t.Error("/dev/null or a reader is taken for a terminal")
	}
	_, terminal := testbin.OpenPTY(t)
	if !IsTerminal(terminal) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
}
