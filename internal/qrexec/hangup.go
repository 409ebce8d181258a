package qrexec

import (
	"os"

	"golang.org/x/sys/unix"
)

// A caller that is gone for good must end its call: its service is killed
// and its call slot freed (C6). Reading EOF on its connection does not say
// so: after its stdin's EOF a caller may half-close the connection
// (shutdown(SHUT_WR), as socat and nc -N do) and still read the output.
// A hangup does: the peer closed its end in both directions, which the
// kernel reports as EPOLLHUP on a socket and EPOLLERR on the write end of
// a pipe whose reader is gone, never for a half-close. It is watched apart
// from the call's reads and writes, so it is noticed even while nothing
// is read from the caller (a service that does not read its stdin, a
// target that does not read what is relayed to it).

// watchHangup returns a channel that is closed when conn's peer hangs up,
// and stop, which ends the watch and must be called. The channel is never
// closed for a connection without a descriptor, or if the watch cannot be
// set up; then a caller that left is noticed only when a write to it
// fails.
func watchHangup(conn Conn) (hungUp <-chan struct{}, stop func()) {
	var towardPeer any = conn
	if p, ok := conn.(*pipeConn); ok {
		towardPeer = p.w // a socket is both ways; of two pipes, ours to the peer errs once it has left
	}
	raw, ok := descriptor(towardPeer)
	if !ok {
		return nil, func() {}
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, func() {}
	}
	var ctlErr error
	err = raw.Control(func(fd uintptr) {
		// No event asked for: epoll reports EPOLLHUP and EPOLLERR always,
		// and only those.
		ctlErr = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &unix.EpollEvent{})
	})
	if err != nil || ctlErr != nil || unix.SetNonblock(epfd, true) != nil {
		unix.Close(epfd)
		return nil, func() {}
	}
	// Non-blocking, the epoll descriptor is waited for by Go's poller: it
	// is readable when conn has hung up. No thread waits in the meantime.
	watch := os.NewFile(uintptr(epfd), "hangup watch")
	rawWatch, err := watch.SyscallConn()
	if err != nil {
		watch.Close()
		return nil, func() {}
	}
	ch := make(chan struct{})
	go func() {
		hangup := false
		events := make([]unix.EpollEvent, 1)
		err := rawWatch.Read(func(fd uintptr) bool {
			n, err := unix.EpollWait(int(fd), events, 0)
			for err == unix.EINTR {
				n, err = unix.EpollWait(int(fd), events, 0)
			}
			hangup = n > 0
			return hangup || err != nil
		})
		if err == nil && hangup {
			close(ch)
		}
	}()
	return ch, func() { watch.Close() }
}
