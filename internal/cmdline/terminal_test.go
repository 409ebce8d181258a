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
		ascii  bool
	}{
		{"text", []string{"héllo wörld\tok\n"}, "héllo wörld\tok\n", false},
		{"CSI clear screen", []string{"A\x1b[2JB\n"}, "A_[2JB\n", false},
		{"title (OSC … BEL)", []string{"\x1b]0;title\x07"}, "_]0;title_", false},
		{"carriage return and DEL", []string{"a\rb\x7f"}, "a_b_", false},
		{"C1 CSI in UTF-8, split", []string{"x\xc2", "\x9b2J"}, "x_2J", false},
		{"bidirectional override", []string{"a\u202eb"}, "a_b", false},
		{"not UTF-8", []string{"\xff\xfe"}, "__", false},
		{"split multi-byte rune", []string{"\xe2\x82", "\xac"}, "€", false},
		{"unfinished at the end", []string{"ok\xe2\x82"}, "ok__", false},
		// A terminal that does not decode UTF-8 would read the 0x9b of
		// U+00DB as CSI.
		{"not UTF-8: no byte above ASCII", []string{"U\u00db2J é\x1b\n"}, "U__2J ___\n", true},
		// Outside UTF-8 too, tab stays and DEL is replaced.
		{"not UTF-8: tab and DEL", []string{"a\tb\x7fc\n"}, "a\tb_c\n", true},
	} {
		var out strings.Builder
		f := &EscapeFilter{W: &out, ASCII: c.ascii}
		for _, w := range c.writes {
			if n, err := f.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("%s: Write = %d, %v", c.name, n, err)
			}
		}
		// Flushed once: a second Flush has nothing left to write.
		for range 2 {
			if err := f.Flush(); err != nil {
				t.Fatal(err)
			}
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

// The locale's character set decides, the first of LC_ALL, LC_CTYPE and
// LANG that is set; none is C, not UTF-8.
func TestUTF8Locale(t *testing.T) {
	for _, c := range []struct {
		all, ctype, lang string
		want             bool
	}{
		{"", "", "", false},
		{"", "", "en_US.UTF-8", true},
		{"", "", "C.utf8", true},
		{"C", "", "en_US.UTF-8", false},
		{"", "de_DE.ISO-8859-1", "en_US.UTF-8", false},
		{"", "C.UTF-8", "POSIX", true},
		// LC_ALL beats LC_CTYPE, as it does in the C library.
		{"C", "C.UTF-8", "", false},
		{"en_US.UTF-8", "C", "", true},
	} {
		t.Setenv("LC_ALL", c.all)
		t.Setenv("LC_CTYPE", c.ctype)
		t.Setenv("LANG", c.lang)
		if got := UTF8Locale(); got != c.want {
			t.Errorf("LC_ALL=%q LC_CTYPE=%q LANG=%q: %v, want %v", c.all, c.ctype, c.lang, got, c.want)
		}
	}
}
