package qrexec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/filekind"
)

// SocketDir is the default home of the qrexec sockets: in dom0 a
// directory per domain that the daemon listens in, in a domain the agent's
// agent.sock and the daemon's daemon.sock that its clients call.
const SocketDir = "/run/pedos/qrexec"

// Conn is one call's connection, whatever carries it.
type Conn interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}

// Addresses name where a daemon or an agent listens (docs/qrexec-protocol.md
// "Transports"):
//
//	PATH or unix:PATH   a Unix domain socket
//	vsock:CID:PORT      vsock (Dial); vsock:PORT to Listen on every local CID
//	exec:COMMAND        Dial only: run COMMAND with /bin/sh -c and use its
//	                    stdin/stdout as the connection (ssh, a serial line)

// Dial connects to addr. An exec: command's stderr is ours.
func Dial(addr string) (Conn, error) { return dial(addr, nil) }

// dial connects to addr. An exec: command's stderr goes to stderrLog, line
// by line, or to ours if stderrLog is nil.
func dial(addr string, stderrLog *slog.Logger) (Conn, error) {
	switch kind, rest := splitAddress(addr); kind {
	case "vsock":
		cidText, portText, _ := strings.Cut(rest, ":")
		cid, err1 := strconv.ParseUint(cidText, 10, 32)
		port, err2 := strconv.ParseUint(portText, 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("qrexec address %q: want vsock:CID:PORT, two numbers below 2^32", addr)
		}
		return vsock.Dial(uint32(cid), uint32(port), nil)
	case "exec":
		return dialCommand(rest, stderrLog)
	default:
		return dialUnix(rest)
	}
}

// dialUnix connects to the Unix socket at path, which must be a socket
// itself, not a symbolic link: a domain can write in its own socket
// directory and would otherwise send dom0's calls for it to another
// domain's agent (C1). The check and the connection are on the same inode,
// opened once: connecting through /proc/self/fd leaves no window to swap
// the path in between.
func dialUnix(path string) (Conn, error) {
	fd, err := openSocket(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	conn, err := net.DialTimeout("unix", procFD(fd), 10*time.Second)
	if err != nil {
		if opErr, ok := errors.AsType[*net.OpError](err); ok {
			err = opErr.Err // without the /proc/self/fd name
		}
		return nil, fmt.Errorf("connecting to %s: %w", path, err)
	}
	return conn, nil
}

// openSocket opens the socket at path with O_PATH, refusing anything else,
// a symbolic link included: the name is resolved once, and what the
// caller then does through procFD(fd) reaches the inode checked here.
func openSocket(path string) (fd int, err error) {
	fd, err = unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: not a socket but %s", path, filekind.OfStat(st.Mode))
	}
	return fd, nil
}

// chmodSocket sets the mode of the socket at path, never following a link.
func chmodSocket(path string, mode uint32) error {
	fd, err := openSocket(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Chmod(procFD(fd), mode); err != nil {
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// procFD names the file open at fd in this process.
func procFD(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// ErrBadAddress marks an address Listen cannot listen on whatever the
// system's state: a mistake in the command line.
var ErrBadAddress = errors.New("not an address to listen on")

// Listen listens on addr (a Unix socket path or vsock:PORT).
func Listen(addr string) (net.Listener, error) {
	switch kind, rest := splitAddress(addr); kind {
	case "vsock":
		port, err := strconv.ParseUint(rest, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q: %w: want vsock:PORT, PORT a number below 2^32", addr, ErrBadAddress)
		}
		// Any local context id: vsock.Listen would first ask /dev/vsock
		// for this machine's, which a unit with PrivateDevices=yes (both
		// shipped units) does not have.
		return vsock.ListenContextID(unix.VMADDR_CID_ANY, uint32(port), nil)
	case "exec":
		return nil, fmt.Errorf("%q: %w: a command (exec:) is only called", addr, ErrBadAddress)
	default:
		// A stale socket from an earlier run would make Listen fail.
		fi, err := os.Lstat(rest)
		switch {
		case err == nil && fi.Mode()&os.ModeSocket != 0:
			os.Remove(rest)
		case err == nil:
			return nil, fmt.Errorf("listen on %s: a file that is not a socket is there", rest)
		}
		if _, err := os.Stat(filepath.Dir(rest)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("listen on %s: its directory does not exist (the shipped unit makes /run/pedos/qrexec, RuntimeDirectory=)", rest)
		}
		return net.Listen("unix", rest)
	}
}

func splitAddress(addr string) (kind, rest string) {
	for _, kind := range []string{"unix", "vsock", "exec"} {
		if rest, ok := strings.CutPrefix(addr, kind+":"); ok {
			return kind, rest
		}
	}
	return "unix", addr
}

// PeerCID returns the vsock context id of conn's peer, if it is a vsock
// connection.
func PeerCID(conn net.Conn) (uint32, bool) {
	addr, ok := conn.RemoteAddr().(*vsock.Addr)
	if !ok {
		return 0, false
	}
	return addr.ContextID, true
}

// pipeConn is a connection over a pair of pipes: this process's stdin and
// stdout, or a child's.
type pipeConn struct {
	r, w  *os.File
	child *exec.Cmd // nil for our own stdio
	// stderrLogged is closed once the child's stderr is all in the log (nil
	// when it is not logged): a --stdio daemon exits right after Close.
	stderrLogged chan struct{}
	// closing makes Close run once: a caller whose stdin failed closes the
	// connection while its own deferred Close may run (client.go), and two
	// Waits, or a kill after the child was reaped, must not happen.
	closing  sync.Once
	closeErr error
}

// StdioConn is the connection on this process's stdin and stdout. They are
// made non-blocking first: only then does Go's poller take them, and only
// then do deadlines work (a pipe or socket from ssh or a serial helper).
// A write to a peer that left must fail, as on a socket, so that the call
// is ended and logged: Go kills a process writing to a broken pipe on
// stdout, unless SIGPIPE is asked for. Asked for, not ignored: an ignored
// signal would stay ignored in the services we run.
func StdioConn() Conn {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	return &pipeConn{r: nonBlockingFile(0, "stdin"), w: nonBlockingFile(1, "stdout")}
}

// nonBlockingFile is a File for fd, made non-blocking. If that fails the
// File blocks, and SetDeadline says there is no deadline.
func nonBlockingFile(fd int, name string) *os.File {
	unix.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), name)
}

// dialCommand runs command as the connection's peer. Its stderr goes to
// stderrLog if it is not nil: the daemon's own stderr may be a calling
// domain's (--stdio, over ssh), which must not see what another domain's
// agent, or ssh to it, says (C1).
func dialCommand(command string, stderrLog *slog.Logger) (Conn, error) {
	childStdin, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer childStdin.Close() // the child's copy, once started, is the one that counts
	r, childStdout, err := os.Pipe()
	if err != nil {
		w.Close()
		return nil, err
	}
	defer childStdout.Close()
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = childStdin, childStdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Close ends all of it
	var stderr *os.File
	if stderrLog != nil {
		var childStderr *os.File
		if stderr, childStderr, err = os.Pipe(); err != nil {
			r.Close()
			w.Close()
			return nil, err
		}
		defer childStderr.Close()
		cmd.Stderr = childStderr
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		if stderr != nil {
			stderr.Close()
		}
		return nil, fmt.Errorf("qrexec: starting %q: %w", command, err)
	}
	conn := &pipeConn{r: r, w: w, child: cmd}
	if stderr != nil {
		conn.stderrLogged = make(chan struct{})
		go func() {
			defer close(conn.stderrLogged)
			logLines(stderr, stderrLog, "agent stderr")
			stderr.Close()
		}()
	}
	return conn, nil
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// SetDeadline sets both pipes' deadlines. A regular file has none
// (os.ErrNoDeadline).
func (c *pipeConn) SetDeadline(t time.Time) error {
	if err := c.r.SetDeadline(t); err != nil {
		return err
	}
	return c.w.SetDeadline(t)
}

// CloseWrite closes the pipe towards the peer, which then reads EOF.
func (c *pipeConn) CloseWrite() error { return c.w.Close() }

// childGrace is how long a child may take to end on its own once its
// connection is closed, before its process group is killed.
const childGrace = 2 * time.Second

// Close closes both pipes and, for a child, ends it: the call is over. The
// child sees us hang up, and an agent then ends the service it runs, which
// is in a process group of its own that no kill of the child's group
// reaches (hangup.go); what is left of that group after childGrace is
// killed.
func (c *pipeConn) Close() error {
	c.closing.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *pipeConn) close() error {
	err := c.r.Close()
	c.w.Close() // possibly closed by CloseWrite already
	if c.child != nil {
		exited := make(chan struct{})
		go func() {
			c.child.Wait()
			close(exited)
		}()
		select {
		case <-exited:
		case <-time.After(childGrace):
		}
		syscall.Kill(-c.child.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	if c.stderrLogged != nil {
		// Bounded: what the child started may hold its stderr open.
		select {
		case <-c.stderrLogged:
		case <-time.After(childGrace):
		}
	}
	return err
}
