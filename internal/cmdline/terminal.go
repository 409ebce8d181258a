package cmdline

import (
	"bytes"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// IsTerminal says whether stream (stdin, stdout or stderr) is a terminal:
// an *os.File with terminal settings, not any character device (/dev/null, a
// cron job's or a unit's stdin, is one too, and no one answers there).
func IsTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// EscapeFilter passes another domain's output on to a terminal with what the
// terminal would act on replaced by '_': every rune that is not printable but
// newline and tab (ESC and the rest of C0, DEL, the C1 controls such as CSI,
// carriage return, bidirectional controls) and every byte that is not UTF-8.
// A domain must not retitle dom0's terminal, clear it, move its cursor over
// dom0's own lines, or answer back through it. A rune split between two
// writes is held until the second; Flush ends an unfinished one.
type EscapeFilter struct {
	W io.Writer
	// ASCII replaces every byte that is not ASCII too: a terminal that does
	// not decode UTF-8 (another locale, the Linux console's default) takes
	// a byte 0x80-0x9f, which printable runes hold (U+00DB is C3 9B), for a
	// C1 control: 0x9b is CSI.
	ASCII bool
	held  []byte
}

func (f *EscapeFilter) Write(untrusted []byte) (int, error) {
	data := append(f.held, untrusted...)
	f.held = nil
	out := make([]byte, 0, len(data))
	for f.ASCII && len(data) > 0 {
		if c := data[0]; c == '\n' || c == '\t' || c >= ' ' && c < 0x7f {
			out = append(out, c)
		} else {
			out = append(out, '_')
		}
		data = data[1:]
	}
	for len(data) > 0 {
		if !utf8.FullRune(data) {
			f.held = bytes.Clone(data)
			break
		}
		r, size := utf8.DecodeRune(data)
		if r == '\n' || r == '\t' || Printable(r, size) {
			out = append(out, data[:size]...)
		} else {
			out = append(out, '_')
		}
		data = data[size:]
	}
	if _, err := f.W.Write(out); err != nil {
		return 0, err
	}
	return len(untrusted), nil
}

// Printable says whether a rune utf8.DecodeRune read in size bytes reaches a
// terminal as text it shows, and nothing it acts on: a printable character,
// not a byte that was no UTF-8 (RuneError of one byte).
func Printable(r rune, size int) bool {
	return unicode.IsPrint(r) && !(r == utf8.RuneError && size == 1)
}

// Flush writes an unfinished rune held back, as '_' for each of its bytes.
func (f *EscapeFilter) Flush() error {
	if len(f.held) == 0 {
		return nil
	}
	_, err := f.W.Write(bytes.Repeat([]byte{'_'}, len(f.held)))
	f.held = nil
	return err
}

// UTF8Locale says whether the locale's character set, as LC_ALL, LC_CTYPE
// or LANG name it (the first that is set), is UTF-8; none set is the C
// locale, which is not.
func UTF8Locale() bool {
	for _, name := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if locale := os.Getenv(name); locale != "" {
			charset := strings.ToLower(locale)
			return strings.Contains(charset, "utf-8") || strings.Contains(charset, "utf8")
		}
	}
	return false
}
