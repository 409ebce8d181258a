package qrexec

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The data phase of a call (docs/qrexec-protocol.md "A call, step by
// step"): each side sends its streams as data messages with a
// messageWriter and takes the other side's with a dataReader. Each holds at
// most one message at a time, so a slow reader stops the writer through
// the connection (backpressure). Payloads are spliced where the descriptors
// allow it (splice.go), copied through one buffer otherwise.

// messageWriter frames messages onto one connection from several goroutines.
type messageWriter struct {
	mu  sync.Mutex
	w   io.Writer
	raw syscall.RawConn // w's descriptor, if payloads can be spliced into it
}

func newMessageWriter(conn Conn) *messageWriter {
	raw, _ := spliceable(conn)
	return &messageWriter{w: conn, raw: raw}
}

func (m *messageWriter) send(t MsgType, payload []byte) error {
	frame := appendMessage(make([]byte, 0, headerLen+len(payload)), t, payload)
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.w.Write(frame)
	return err
}

// pump sends r as messages of type t, then an empty one for EOF; a
// message is at most what one read of r brings. If the peer is gone, r is
// closed (when it is a Closer) so its writer gets EPIPE instead of
// blocking.
func (m *messageWriter) pump(t MsgType, r io.Reader) error {
	src, ok := spliceable(r)
	if !ok || m.raw == nil {
		return m.pumpCopied(t, r)
	}
	f, err := newFramer(t)
	if err != nil {
		return m.pumpCopied(t, r)
	}
	defer f.close()
	for {
		n, err := f.payloads.fill(src, framedBatch)
		if err != nil {
			return &readError{err}
		}
		if err := f.frame(n); err != nil {
			return err
		}
		m.mu.Lock()
		err = f.messages.drain(m.raw, f.messages.held)
		m.mu.Unlock()
		if err != nil {
			closeReader(r)
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

func (m *messageWriter) pumpCopied(t MsgType, r io.Reader) error {
	buf := make([]byte, headerLen+MaxDataLen)
	for {
		n, err := r.Read(buf[headerLen:])
		if n > 0 || err == io.EOF {
			appendHeader(buf[:0], t, n) // in place, before the payload
			m.mu.Lock()
			_, werr := m.w.Write(buf[:headerLen+n])
			m.mu.Unlock()
			if werr != nil {
				closeReader(r)
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &readError{err}
		}
	}
}

// readError is a pump whose source failed (EIO from a terminal that went
// away, EISDIR): its stream has no EOF, and the call cannot go on as if it
// had one (the service would act on part of its input).
type readError struct{ Err error }

func (e *readError) Error() string { return "reading: " + e.Err.Error() }
func (e *readError) Unwrap() error { return e.Err }

func closeReader(r io.Reader) {
	if c, ok := r.(io.Closer); ok {
		c.Close()
	}
}

// dataReader reads the messages of the data phase from a connection: call
// next for a header, then take its payload with payload or deliver.
type dataReader struct {
	conn    io.Reader     // the connection, or spliced
	spliced *spliceReader // the connection read through a pipe, if it can be
	sinks   []*sink       // those holding payloads in a pipe of their own
	buf     []byte        // made for the first copied payload
}

func newDataReader(conn Conn) *dataReader {
	r := &dataReader{conn: conn}
	if raw, ok := spliceable(conn); ok {
		if p, err := newSplicePipe(pipeSize); err == nil {
			r.spliced = &spliceReader{conn: raw, pipe: p, beforeWait: r.flush}
			r.conn = r.spliced
		}
	}
	return r
}

// buffer returns a buffer for one payload. Spliced calls, most of them,
// never need it: a call's fixed cost matters for calls per second.
func (r *dataReader) buffer() []byte {
	if r.buf == nil {
		r.buf = make([]byte, MaxDataLen)
	}
	return r.buf
}

func (r *dataReader) close() {
	if r.spliced != nil {
		r.spliced.pipe.close()
	}
	for _, s := range r.sinks {
		s.pending.close()
	}
}

// flush hands every payload received so far to its sink.
func (r *dataReader) flush() {
	for _, s := range r.sinks {
		s.flush()
	}
}

// next reads and checks the next message header (readHeader); n payload
// bytes follow.
func (r *dataReader) next() (t MsgType, n int, err error) { return readHeader(r.conn) }

// payload reads the n-byte payload of a message of type t into buf, which
// must have room for it.
func (r *dataReader) payload(t MsgType, n int, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r.conn, buf[:n]); err != nil {
		return nil, truncated(t, err)
	}
	return buf[:n], nil
}

// deliver moves the n-byte payload of a message of type t to s. If s
// fails, as a local reader that went away, the payload is lost as with a
// pipe (s.failed says so); only a failure of the connection is returned.
func (r *dataReader) deliver(t MsgType, n int, s *sink) error {
	if r.spliced == nil {
		data, err := r.payload(t, n, r.buffer())
		if err == nil {
			_, werr := s.w.Write(data)
			s.note(werr)
		}
		return err
	}
	if s.raw != nil && s.pending == nil {
		if s.pending, _ = newSplicePipe(pipeSize); s.pending == nil {
			s.raw = nil // out of descriptors: copy
		} else {
			r.sinks = append(r.sinks, s)
		}
	}
	p := r.spliced.pipe
	for n > 0 {
		if err := r.spliced.refill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return truncated(t, err)
		}
		part := min(n, p.held)
		n -= part
		if s.raw == nil {
			s.note(p.unload(s.w, r.buffer(), part))
			continue
		}
		for part > 0 {
			moved, err := p.moveSome(s.pending, part)
			if err == unix.EAGAIN {
				s.flush() // pending is full
			} else if err != nil {
				return fmt.Errorf("moving a payload between private pipes: %w", err)
			}
			part -= moved
		}
	}
	return nil
}

// A sink is where a stream's payloads go: w, spliced into when it can be.
// Spliced payloads wait in pending until the connection has no more for
// now, then go into w with one splice: w's reader is woken once for them.
type sink struct {
	w       io.Writer
	raw     syscall.RawConn
	pending *splicePipe
	// failed is w's first write error but EPIPE (a reader that went away,
	// which loses the rest as with a pipe) and EBADF (an output the caller
	// closed, 2>&-): a full disk or an I/O error under the caller's output
	// must not pass for success.
	failed error
}

func (s *sink) note(err error) {
	if s.failed == nil && err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.EBADF) {
		s.failed = err
	}
}

// newSink is a sink for w; nil discards.
func newSink(w io.Writer) *sink {
	if w == nil {
		return &sink{w: io.Discard}
	}
	raw, _ := spliceable(w)
	return &sink{w: w, raw: raw}
}

// flush moves the pending payloads into w. If w fails, as a local reader
// that went away, they are written to w instead, which fails the way a
// plain write does (for our stdout, by SIGPIPE).
func (s *sink) flush() {
	if s.pending == nil || s.pending.held == 0 {
		return
	}
	if s.raw == nil || s.pending.drain(s.raw, s.pending.held) != nil {
		s.raw = nil
		s.note(s.pending.unload(s.w, make([]byte, MaxDataLen), s.pending.held))
	}
}

// close delivers what is pending and closes w, if it is a Closer, at the
// stream's end: a local program's stdin must see EOF.
func (s *sink) close() {
	s.flush()
	if c, ok := s.w.(io.Closer); ok {
		c.Close()
	}
}

// relayBytes copies src to dst until src ends or either fails, spliced
// when both can be.
func relayBytes(dst, src Conn) {
	srcRaw, srcOK := spliceable(src)
	dstRaw, dstOK := spliceable(dst)
	var p *splicePipe
	if srcOK && dstOK {
		p, _ = newSplicePipe(0)
	}
	if p == nil {
		io.CopyBuffer(dst, src, make([]byte, headerLen+MaxDataLen))
		return
	}
	defer p.close()
	for {
		n, err := p.fill(srcRaw, MaxDataLen)
		if err != nil || n == 0 || p.drain(dstRaw, n) != nil {
			return
		}
	}
}
