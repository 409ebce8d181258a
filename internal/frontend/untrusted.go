package frontend

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"pedos.dev/updates/internal/cmdline"
)

// untrustedText passes text that the UpdateVM wrote (its commands' output,
// dnf's listings) to a person's terminal: line by line, with every control
// character but newline and tab, and every byte that is not UTF-8, shown as
// an escape: a compromised UpdateVM must not retitle the terminal, clear
// it, move the cursor to overwrite dom0's own lines, or turn text around
// with bidirectional controls (what S2 is for names). Flush writes a last, unfinished line.
//
// A non-empty prefix begins every line written, a piece of a line longer
// than maxLineBytes too: the UpdateVM's lines carry its name, so that it
// cannot print lines that pass for dom0's own (==> …, verified: …).
type untrustedText struct {
	w      io.Writer
	prefix string
	line   []byte
	// limit, if not 0, is how many bytes are shown, prefixes and escapes
	// included, in whole lines: an UpdateVM must not flood the person's
	// terminal, or a file the output goes to. The rest is only counted (as
	// the UpdateVM wrote it), and End says how much.
	limit, shown, dropped int64
	// keepTail, if not 0, is how many of the last lines written tail keeps,
	// shown or over the limit (each line's first maxTailLineBytes, cut at
	// a character, then escaped; no prefix): the --json report says why an
	// UpdateVM's command failed. tailLine is the line being written.
	keepTail     int
	tail         []string
	tailLine     []byte
	tailLineFull bool
	// status, if not nil, may take a complete line instead of it being
	// shown (a progress line it draws as a bar); it sees the line as the
	// UpdateVM wrote it.
	status func(untrustedLine []byte) bool
}

// maxTailLineBytes bounds each line tail keeps, before it is escaped.
const maxTailLineBytes = 512

// maxLineBytes bounds what is held back waiting for a newline.
const maxLineBytes = 4096

// maxLogBytes is what is shown of the UpdateVM's stderr in one call: dnf's
// output for hundreds of packages is a few hundred KiB. maxShownListingBytes is
// for a query's listing that shares it (--json): a distribution's whole
// repository lists in a few MiB.
const (
	maxLogBytes          = 1 << 20
	maxShownListingBytes = 64 << 20
)

func newUntrustedText(w io.Writer, prefix string) *untrustedText {
	return &untrustedText{w: w, prefix: prefix}
}

func (t *untrustedText) Write(untrusted []byte) (int, error) {
	n := len(untrusted)
	if t.keepTail > 0 {
		t.remember(untrusted)
	}
	// Past the limit nothing more is shown, but a status hook still sees
	// each line (the UpdateVM's bar must not stop there).
	if t.limit > 0 && t.shown >= t.limit && t.status == nil {
		t.dropped += int64(len(untrusted))
		return n, nil
	}
	for len(untrusted) > 0 {
		end := bytes.IndexByte(untrusted, '\n') + 1
		if end == 0 {
			end = len(untrusted)
		}
		t.line = append(t.line, untrusted[:end]...)
		untrusted = untrusted[end:]
		if t.line[len(t.line)-1] == '\n' || len(t.line) >= maxLineBytes {
			if err := t.Flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Flush writes what is held back, ended with a newline if it has none:
// dom0's next line must not continue the UpdateVM's.
func (t *untrustedText) Flush() error {
	if len(t.line) == 0 {
		return nil
	}
	if t.status != nil && t.line[len(t.line)-1] == '\n' && t.status(t.line) {
		t.line = t.line[:0]
		return nil
	}
	if t.limit > 0 && t.shown >= t.limit {
		t.dropped += int64(len(t.line))
		t.line = t.line[:0]
		return nil
	}
	line := append([]byte(t.prefix), printable(t.line)...)
	if line[len(line)-1] != '\n' {
		line = append(line, '\n')
	}
	if t.limit > 0 && t.shown+int64(len(line)) > t.limit {
		// Nothing more is shown: the rest is counted as it comes.
		t.shown, t.dropped = t.limit, t.dropped+int64(len(t.line))
		t.line = t.line[:0]
		return nil
	}
	t.shown += int64(len(line))
	_, err := t.w.Write(line)
	t.line = t.line[:0]
	return err
}

// remember adds untrusted to the lines tail keeps.
func (t *untrustedText) remember(untrusted []byte) {
	for len(untrusted) > 0 {
		chunk, rest, ended := bytes.Cut(untrusted, []byte{'\n'})
		if !t.tailLineFull {
			take := min(len(chunk), maxTailLineBytes-len(t.tailLine))
			if take < len(chunk) {
				t.tailLineFull = true
				// Not inside a character: back to the start of the one cut.
				for i := take; i > 0 && i > take-utf8.UTFMax; i-- {
					if utf8.RuneStart(chunk[i]) {
						take = i
						break
					}
				}
			}
			t.tailLine = append(t.tailLine, chunk[:take]...)
		}
		if !ended {
			return
		}
		t.endTailLine()
		untrusted = rest
	}
}

func (t *untrustedText) endTailLine() {
	t.tail = append(t.tail[max(0, len(t.tail)+1-t.keepTail):], string(escaped(t.tailLine, "\t")))
	t.tailLine, t.tailLineFull = t.tailLine[:0], false
}

// End flushes, and says how much was left out over the limit.
func (t *untrustedText) End() error {
	if len(t.tailLine) > 0 {
		t.endTailLine()
	}
	err := t.Flush()
	if t.dropped > 0 {
		_, err = fmt.Fprintf(t.w, "%s[%d more bytes of output not shown: over %d]\n", t.prefix, t.dropped, t.limit)
	}
	return err
}

// printable is untrusted with what a terminal would act on escaped: \xNN
// for a byte that is not UTF-8 or an ASCII control character but newline
// and tab, \uNNNN for any other rune that is not printable.
func printable(untrusted []byte) []byte { return escaped(untrusted, "\n\t") }

// oneLine is one of dom0's own messages as printable makes text, newline
// and tab escaped too: the paths and names it includes come from dom0's
// configuration, --root and directory listings (a file named with an ESC
// or a newline), and must neither act on the terminal nor start a line
// that passes for another message.
func oneLine(message string) string { return string(escaped([]byte(message), "")) }

// escaped is untrusted with every rune that is not printable escaped, but
// those in keep.
func escaped(untrusted []byte, keep string) []byte {
	out := make([]byte, 0, len(untrusted))
	for len(untrusted) > 0 {
		r, size := utf8.DecodeRune(untrusted)
		switch {
		case strings.ContainsRune(keep, r) || cmdline.Printable(r, size):
			out = append(out, untrusted[:size]...)
		case r < utf8.RuneSelf || size == 1:
			out = fmt.Appendf(out, `\x%02x`, untrusted[0])
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		untrusted = untrusted[size:]
	}
	return out
}
