package qrexec

import (
	"errors"
	"io"
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
// held counts the bytes in it; fill needs it empty, drain empties it.
type splicePipe struct {
	r, w int
	held int

	// The splice in progress and the callbacks that make it, bound once:
	// a closure per splice would be garbage for every message.
	want, moved       int
	err               error
	fillFrom, drainTo func(fd uintptr) (done bool)
}

func newSplicePipe() (*splicePipe, error) {
	var fds [2]int
	// Blocking: whether a splice waits is decided by the other descriptor
	// (the kernel applies its O_NONBLOCK); the pipe never makes it wait,
	// being empty when filled and non-empty when drained.
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	p := &splicePipe{r: fds[0], w: fds[1]}
	p.fillFrom, p.drainTo = p.spliceIn, p.spliceOut
	return p, nil
}

func (p *splicePipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// fill moves at most max bytes from src into the empty pipe and returns
// how many: 0 at src's end of file.
func (p *splicePipe) fill(src syscall.RawConn, max int) (int, error) {
	p.want = max
	if err := errors.Join(src.Read(p.fillFrom), p.err); err != nil {
		return 0, err
	}
	p.held = p.moved
	return p.moved, nil
}

// spliceIn is fill's splice from fd; false means wait until fd is readable.
func (p *splicePipe) spliceIn(fd uintptr) bool {
	p.moved, p.err = splice(int(fd), p.w, p.want, 0)
	if p.err == nil && p.moved > 0 && p.moved < p.want {
		// Take what else fd has at once, without waiting: bigger messages
		// cost less per byte.
		if more, err := splice(int(fd), p.w, p.want-p.moved, unix.SPLICE_F_NONBLOCK); err == nil {
			p.moved += more
		}
	}
	return p.err != unix.EAGAIN
}

// drain moves everything the pipe holds to dst.
func (p *splicePipe) drain(dst syscall.RawConn) error {
	for p.held > 0 {
		if err := errors.Join(dst.Write(p.drainTo), p.err); err != nil {
			return err
		}
		p.held -= p.moved
	}
	return nil
}

// spliceOut is drain's splice to fd; false means wait until fd is writable.
func (p *splicePipe) spliceOut(fd uintptr) bool {
	p.moved, p.err = splice(p.r, int(fd), p.held, 0)
	return p.err != unix.EAGAIN
}

// unload reads what the pipe holds through buf and writes it to w, for a
// destination that failed a splice: w's Write then fails the way a plain
// write does (for our stdout, by SIGPIPE).
func (p *splicePipe) unload(w io.Writer, buf []byte) {
	for p.held > 0 {
		n, err := unix.Read(p.r, buf[:min(p.held, len(buf))])
		if err != nil || n == 0 {
			return // cannot happen with bytes in our own pipe
		}
		w.Write(buf[:n])
		p.held -= n
	}
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
