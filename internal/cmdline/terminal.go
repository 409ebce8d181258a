package cmdline

import (
	"bytes"
	"io"
	"os"
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
	W    io.Writer
	held []byte
}

func (f *EscapeFilter) Write(untrusted []byte) (int, error) {
	data := append(f.held, untrusted...)
	f.held = nil
	out := make([]byte, 0, len(data))
	for len(data) > 0 {
		if !utf8.FullRune(data) {
			f.held = bytes.Clone(data)
			break
		}
		r, size := utf8.DecodeRune(data)
		if r == '\n' || r == '\t' || unicode.IsPrint(r) && !(r == utf8.RuneError && size == 1) {
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

// Flush writes an unfinished rune held back, as '_' for each of its bytes.
func (f *EscapeFilter) Flush() error {
	if len(f.held) == 0 {
		return nil
	}
	_, err := f.W.Write(bytes.Repeat([]byte{'_'}, len(f.held)))
	f.held = nil
	return err
}
