package qrexec

import (
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"time"
)

// Agent runs calls to its domain: service calls relayed by dom0's daemon and
// commands from dom0. Whoever can connect to it is dom0, so its listener
// must be reachable only from dom0 (SOCKDIR/<domain>/agent.sock, or vsock
// from the host's CID only).
type Agent struct {
	ServiceDir     string
	RequestTimeout time.Duration
	Log            *slog.Logger

	// drops logs connections dropped per vsock peer, counted beyond the
	// first; calls logs the lines of service calls per calling domain,
	// counted beyond callLogBurst (C6).
	drops, calls floodLog
}

// Serve serves calls on l; accept says whether a connection may call (the
// vsock peer check), nil for all.
func (a *Agent) Serve(l net.Listener, accept func(net.Conn) bool) error {
	return serveListener(l, a.Log, func(conn net.Conn) {
		if accept != nil && !accept(conn) {
			cid, _ := PeerCID(conn)
			a.drops.count(fmt.Sprint("cid ", cid), func(count int) {
				a.Log.Warn("connection from a peer other than dom0, dropped", "cid", cid, "count", count)
			})
			conn.Close()
			return
		}
		a.ServeCall(conn)
	})
}

// ServeCall serves one call on conn and closes conn.
func (a *Agent) ServeCall(conn Conn) {
	defer conn.Close()
	setRequestDeadline(conn, a.RequestTimeout, a.Log)
	t, req, err := readRequest(conn, MsgExecService, MsgExecCommand)
	if err != nil {
		logBadRequest(conn, a.Log.Warn, err)
		return
	}
	if t == MsgExecService {
		log := callLogger(a.Log.With("from", req.Source), &a.calls, req.Source, req.Service).With("service", req.Service, "argument", req.Argument)
		serveService(conn, a.ServiceDir, req, log)
		return
	}
	log := a.Log.With("from", "dom0", "user", req.User, "command", req.Command)
	// "--": a command that begins with "-" is a command, not the shell's
	// option (pedos-run DOMAIN -- -x).
	cmd := exec.Command("/bin/sh", "-c", "--", req.Command)
	cmd.Env = cleanEnv()
	if err := runAs(cmd, req.User); err != nil {
		log.Error("cannot run command", "err", err)
		refuse(conn, ExitFailure)
		return
	}
	conn.SetDeadline(time.Time{})
	log.Info("running command")
	serveProcess(conn, cmd, true, log)
}
