package frontend

import (
	"bytes"
	"io"
)

// dnfAborted is what dnf 4 prints when its question "Is this ok [y/N]"
// got no yes (measured with dnf 4.14 and stdin /dev/null, LANG=C.UTF-8).
const dnfAborted = "Operation aborted."

// phraseWatch passes dnf's output on to w and notes whether phrase was in
// it, also where it spans two writes.
type phraseWatch struct {
	w      io.Writer
	phrase string
	tail   []byte // the last len(phrase)-1 bytes written
	seen   bool
}

func (p *phraseWatch) Write(b []byte) (int, error) {
	if !p.seen {
		joined := append(append([]byte(nil), p.tail...), b...)
		p.seen = bytes.Contains(joined, []byte(p.phrase))
		p.tail = joined[max(0, len(joined)-len(p.phrase)+1):]
	}
	return p.w.Write(b)
}
