package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The control socket of a domain init: how the host runs a command inside a
// domain. The host connects, sends one request with its stdin, stdout and
// stderr attached (SCM_RIGHTS), and the init starts the command as its own
// child — so the command is in every namespace of the domain and under its
// root without the host ever calling setns, which a multi-threaded Go
// program cannot do for a mount namespace. A caller's stdio that are files
// are passed as they are, so a terminal stays one (connectStdio). The
// connection is a SOCK_SEQPACKET socket: one JSON message per packet.
//
//	→ {"op":"exec","argv":[...],"env":[...]}   + 3 fds; replies {"pid":N} then {"exit":CODE}
//	→ {"op":"signal","signal":15}             forwarded to the command's process group
//	  (closing the connection before the exit kills the command's group)
//	→ {"op":"service","name":N,"argv":[...],"env":[...]}   started detached; replies {"pid":N}
//	→ {"op":"mirror","addr":A}                 the mirror init serves MirrorDocRoot on A
type controlRequest struct {
	Op     string   `json:"op"` // opExec, opSignal, opService, opMirror
	Name   string   `json:"name,omitempty"`
	Argv   []string `json:"argv,omitempty"`
	Env    []string `json:"env,omitempty"`
	Signal int      `json:"signal,omitempty"`
	Addr   string   `json:"addr,omitempty"`
}

// The control requests' operations.
const (
	opExec    = "exec"
	opSignal  = "signal"
	opService = "service"
	opMirror  = "mirror"
)

// controlReply is the init's answer: the started command's pid, then for
// exec its exit status, or the reason it failed.
type controlReply struct {
	PID   int    `json:"pid,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`
}

// maxControlMessage bounds a request: an argv and environment, in JSON.
const maxControlMessage = 1 << 20

// socketPath returns a path to name in dir that fits in a sockaddr_un (108
// bytes) however long dir is, through /proc/self/fd; call done afterwards.
func socketPath(dir, name string) (path string, done func(), err error) {
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", f.Fd(), name), func() { f.Close() }, nil
}

// dialControl connects to a domain's control socket.
func dialControl(d DomainLayout) (*net.UnixConn, error) {
	path, done, err := socketPath(d.Base, filepath.Base(d.controlPath()))
	if err != nil {
		return nil, fmt.Errorf("domain %s: %w", d.Name, err)
	}
	defer done()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		// The dial error names the /proc/self/fd path, meaningless to a
		// reader: name the socket under DIR instead.
		if opErr, ok := errors.AsType[*net.OpError](err); ok {
			err = opErr.Err
		}
		return nil, fmt.Errorf("domain %s is not running (%s: %w)", d.Name, d.controlPath(), err)
	}
	return c, nil
}

func sendControl(c *net.UnixConn, v any, files ...*os.File) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = syscall.UnixRights(fds...)
	}
	_, _, err = c.WriteMsgUnix(b, oob, nil)
	return err
}

// receiveControl reads one message and the descriptors sent with it.
func receiveControl(c *net.UnixConn, v any) ([]*os.File, error) {
	buf := make([]byte, maxControlMessage)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			fds, err := syscall.ParseUnixRights(&m)
			if err != nil {
				return nil, err
			}
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "control-fd"))
			}
		}
	}
	if flags&(syscall.MSG_TRUNC|syscall.MSG_CTRUNC) != 0 {
		closeAll(files)
		return nil, errors.New("control message truncated")
	}
	if n == 0 {
		closeAll(files)
		return nil, errConnectionClosed
	}
	if err := json.Unmarshal(buf[:n], v); err != nil {
		closeAll(files)
		return nil, err
	}
	return files, nil
}

var errConnectionClosed = errors.New("connection closed")

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// control sends one request that has a single reply (service, mirror).
func control(d DomainLayout, req controlRequest) (controlReply, error) {
	c, err := dialControl(d)
	if err != nil {
		return controlReply{}, err
	}
	defer c.Close()
	if err := sendControl(c, req); err != nil {
		return controlReply{}, fmt.Errorf("domain %s: %w", d.Name, err)
	}
	var rep controlReply
	if _, err := receiveControl(c, &rep); err != nil {
		return rep, fmt.Errorf("domain %s: %w", d.Name, err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("domain %s: %s", d.Name, rep.Error)
	}
	return rep, nil
}
