package qrexec

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// A call's bytes pass through three processes (caller, daemon, service).
// Copying every payload into and out of each process's memory made a call
// several times as expensive as a plain cat (docs/qrexec-protocol.md
// "Performance"), so where both ends of a hop are pipes or Unix sockets
// the payloads move inside the kernel with splice(2), through a private
// pipe. Only the 8-byte headers pass through our memory, and they are
// framed and checked exactly as on the copying path.

// splicePipe is a private pipe that payloads pass through with splice(2).
// held counts the bytes in it.
type splicePipe struct {
	r, w int
	held int

	// The splice in progress and the callbacks that make it, bound once:
	// a closure per splice would be garbage for every message.
	want, moved       int
	err               error
	fillFrom, drainTo func(fd uintptr) (done bool)
}

// newSplicePipe makes a pipe of size bytes, or of the default size (64
// KiB) if size is 0.
func newSplicePipe(size int) (*splicePipe, error) {
	var fds [2]int
	// Blocking: whether a splice waits is decided by the other descriptor
	// (the kernel applies its O_NONBLOCK); the pipe never makes it wait,
	// having room when filled and bytes when drained.
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	p := &splicePipe{r: fds[0], w: fds[1]}
	p.fillFrom, p.drainTo = p.spliceIn, p.spliceOut
	if size > 0 {
		if _, err := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, size); err != nil {
			p.close()
			return nil, fmt.Errorf("pipe of %d bytes: %w", size, err)
		}
	}
	return p, nil
}

func (p *splicePipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// fill moves at most max bytes from src into the pipe and returns how
// many: 0 at src's end of file.
func (p *splicePipe) fill(src syscall.RawConn, max int) (int, error) {
	p.want = max
	// The wait's error (a deadline) comes first: p.err then still holds
	// the EAGAIN that made the splice wait, which says nothing more.
	if err := cmp.Or(src.Read(p.fillFrom), p.err); err != nil {
		return 0, err
	}
	p.held += p.moved
	return p.moved, nil
}

// spliceIn is fill's splice from fd; false means wait until fd is readable.
func (p *splicePipe) spliceIn(fd uintptr) bool {
	p.moved, p.err = splice(int(fd), p.w, p.want, 0)
	return p.err != unix.EAGAIN
}

// drain moves the first n bytes the pipe holds to dst.
func (p *splicePipe) drain(dst syscall.RawConn, n int) error {
	for n > 0 {
		p.want = n
		if err := cmp.Or(dst.Write(p.drainTo), p.err); err != nil {
			return err
		}
		p.held -= p.moved
		n -= p.moved
	}
	return nil
}

// spliceOut is drain's splice to fd; false means wait until fd is writable.
func (p *splicePipe) spliceOut(fd uintptr) bool {
	p.moved, p.err = splice(p.r, int(fd), p.want, 0)
	return p.err != unix.EAGAIN
}

// move moves the first n bytes p holds to q, which has room for them: the
// splice never waits, so a miscounted room is an error, not a hang.
func (p *splicePipe) move(q *splicePipe, n int) error {
	for n > 0 {
		moved, err := p.moveSome(q, n)
		if err != nil {
			return fmt.Errorf("moving a payload between private pipes: %w", err)
		}
		n -= moved
	}
	return nil
}

// moveSome moves at most n of the bytes p holds to q, as many as q has room
// for; EAGAIN if it has none.
func (p *splicePipe) moveSome(q *splicePipe, n int) (int, error) {
	moved, err := splice(p.r, q.w, n, unix.SPLICE_F_NONBLOCK)
	if err != nil {
		return 0, err
	}
	p.held -= moved
	q.held += moved
	return moved, nil
}

// read reads from the bytes the pipe holds into b.
func (p *splicePipe) read(b []byte) (int, error) {
	n, err := unix.Read(p.r, b[:min(len(b), p.held)])
	if err != nil {
		return 0, err
	}
	p.held -= n
	return n, nil
}

// unload reads the first n bytes the pipe holds through buf and writes them
// to w: a destination that cannot be spliced into, or that failed a splice,
// whose Write then fails the way a plain write does (for our stdout, by
// SIGPIPE). It returns w's first error; the n bytes leave the pipe anyway.
func (p *splicePipe) unload(w io.Writer, buf []byte, n int) (werr error) {
	for n > 0 {
		got, err := p.read(buf[:min(n, len(buf))])
		if err != nil || got == 0 {
			return werr // cannot happen with bytes in our own pipe
		}
		if _, err := w.Write(buf[:got]); werr == nil {
			werr = err
		}
		n -= got
	}
	return werr
}

// Framing and reading in batches. Splicing each 64 KiB message on its own
// cost every process a header write or read, two splices and, most of the
// time, a sleep and a wake-up on the other side, per message: the call's
// cost was per message, not per byte (docs/qrexec-protocol.md
// "Performance"). A framer and a spliceReader move many messages per
// system call on the connection, still without copying a payload.

// framedBatch is the most a framer takes from its source at once: 8
// messages.
const framedBatch = pipeSize / 2

// A framer frames a source's bytes as data messages of one type inside the
// kernel: a batch is spliced from the source into the payloads pipe, then
// each message's header is put into the messages pipe and its payload
// spliced after it, and the messages pipe goes into the connection with
// one splice.
type framer struct {
	t                  MsgType
	payloads, messages *splicePipe
	// fullHeader holds the header of a full message (MaxDataLen bytes),
	// which tee(2) adds to the messages pipe as a reference to its page:
	// a write would fill a new page for 8 bytes, freed by the reader.
	fullHeader *splicePipe
}

func newFramer(t MsgType) (*framer, error) {
	// The messages pipe must have a slot for every buffer of the payloads
	// pipe, plus per message one for its header and one for a buffer the
	// message's end splits in two, plus the EOF header.
	page := os.Getpagesize()
	if pipeSize/page < framedBatch/page+2*(framedBatch/MaxDataLen)+1 {
		return nil, errors.New("pages too large to frame in the kernel")
	}
	f := &framer{t: t}
	var err1, err2, err3 error
	f.payloads, err1 = newSplicePipe(framedBatch)
	f.messages, err2 = newSplicePipe(pipeSize)
	f.fullHeader, err3 = newSplicePipe(0)
	if err := errors.Join(err1, err2, err3); err != nil {
		f.close()
		return nil, err
	}
	if err := f.fullHeader.writeHeader(t, MaxDataLen); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// close closes the pipes that were made.
func (f *framer) close() {
	for _, p := range []*splicePipe{f.payloads, f.messages, f.fullHeader} {
		if p != nil {
			p.close()
		}
	}
}

// frame turns the n bytes the payloads pipe holds (all of them) into
// messages of at most MaxDataLen bytes each in the messages pipe; n == 0
// frames the empty message, EOF.
func (f *framer) frame(n int) error {
	for {
		k := min(n, MaxDataLen)
		if err := f.header(k); err != nil {
			return fmt.Errorf("framing a message: %w", err)
		}
		if err := f.payloads.move(f.messages, k); err != nil {
			return err
		}
		if n -= k; n == 0 {
			return nil
		}
	}
}

// header puts the header of a k-byte message into the messages pipe.
func (f *framer) header(k int) error {
	if k != MaxDataLen {
		return f.messages.writeHeader(f.t, k)
	}
	if _, err := unix.Tee(f.fullHeader.r, f.messages.w, headerLen, unix.SPLICE_F_NONBLOCK); err != nil {
		return err
	}
	f.messages.held += headerLen
	return nil
}

// writeHeader writes the header of a message of type t with an n-byte
// payload into the pipe.
func (p *splicePipe) writeHeader(t MsgType, n int) error {
	var header [headerLen]byte
	if _, err := unix.Write(p.w, appendHeader(header[:0], t, n)); err != nil {
		return err
	}
	p.held += headerLen
	return nil
}

// A spliceReader reads a connection through a private pipe: whenever the
// pipe is empty, everything the connection holds (up to the pipe's size)
// is spliced in with one system call. Headers are read out of the pipe,
// payloads spliced on from it.
type spliceReader struct {
	conn       syscall.RawConn
	pipe       *splicePipe
	beforeWait func() // called before the connection is read, which may wait
}

func (s *spliceReader) Read(b []byte) (int, error) {
	if err := s.refill(); err != nil {
		return 0, err
	}
	return s.pipe.read(b)
}

// refill splices more of the connection into the pipe if it is empty;
// io.EOF at the connection's end.
func (s *spliceReader) refill() error {
	if s.pipe.held > 0 {
		return nil
	}
	s.beforeWait()
	n, err := s.pipe.fill(s.conn, pipeSize)
	if err == nil && n == 0 {
		return io.EOF
	}
	return err
}

func splice(from, to, n int, flags int) (int, error) {
	for {
		moved, err := unix.Splice(from, nil, to, nil, n, unix.SPLICE_F_MOVE|flags)
		if err != unix.EINTR {
			return int(moved), err
		}
	}
}

// spliceable returns the descriptor behind x if x is a pipe or a Unix
// stream socket: the descriptors a call's bytes pass through in the lab
// and in a domain, which every kernel we run on splices. Anything else
// (terminals, files, vsock, our stdio pipeConn) takes the copying path.
func spliceable(x any) (syscall.RawConn, bool) {
	raw, ok := descriptor(x)
	if !ok {
		return nil, false
	}
	ok = false
	err := raw.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil {
			return
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO:
			ok = true
		case unix.S_IFSOCK:
			domain, err1 := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
			kind, err2 := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
			ok = err1 == nil && err2 == nil && domain == unix.AF_UNIX && kind == unix.SOCK_STREAM
		}
	})
	if err != nil || !ok {
		return nil, false
	}
	return raw, true
}

// descriptor returns the descriptor behind x, if there is one.
func descriptor(x any) (syscall.RawConn, bool) {
	sc, ok := x.(syscall.Conn)
	if !ok {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	return raw, err == nil
}

// pipeSize is the size enlargePipe gives a pipe: the most an unprivileged
// process may set (/proc/sys/fs/pipe-max-size by default).
const pipeSize = 1 << 20

// enlargePipe makes x hold pipeSize bytes if it is a pipe. The default 64
// KiB is one message: the writer then stops at every message and each
// side is woken once per message, and on a busy machine those wake-ups
// cost more than the bytes. With a larger pipe each wake-up moves several
// messages; backpressure stays, at pipeSize.
func enlargePipe(x any) {
	if raw, ok := descriptor(x); ok {
		raw.Control(func(fd uintptr) {
			unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) // not a pipe, or over the user's quota: as it is
		})
	}
}
