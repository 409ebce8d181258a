// Command qrexec-agent runs qrexec calls in its domain: service calls that
// dom0's daemon relays after policy, and commands from dom0
// (docs/qrexec-protocol.md).
package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"time"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/qrexec"
)

const usage = `Usage: qrexec-agent [options]
       qrexec-agent [options] --stdio

Runs calls to this domain. Anyone who can connect is treated as dom0, so the
listening address must be reachable only from dom0:
  --listen PATH         a Unix socket (the lab: SOCKDIR/<domain>/agent.sock,
                        a directory only dom0 and this domain reach)
  --listen vsock:PORT   vsock; only connections from --dom0-cid are served
  --stdio               one call on stdin/stdout, then exit (ssh, serial)
Service calls run SERVICE+ARG or SERVICE from the service directory, with
stderr to this agent's log; dom0's commands run with /bin/sh -c as the user
asked for (root is needed for any other user), stderr to dom0.

Options:
  --listen ADDR          where to listen (default /run/pedos/qrexec/agent.sock)
  --service-dir DIR      this domain's services (default /etc/pedos-rpc)
  --dom0-cid CID         vsock context id of dom0 (default 2, the host)
  --request-timeout DUR  limit on the request phase, above 0 (default 10s)
  --log FILE             append the log here instead of stderr
  --stdio                serve one call on stdin/stdout, then exit
  --version              print the release and commit, and exit

Exit status: 0 after the call with --stdio (whatever its outcome); 1 cannot
open the log or listen, or the listener failed; 2 usage error. Otherwise it
serves until a signal (SIGTERM, SIGINT, SIGHUP) ends it, and the services it
runs with it.

Examples:
  qrexec-agent --listen /run/pedos/qrexec/agent.sock
  qrexec-agent --listen vsock:513
`

func main() {
	qrexec.OneProcessor()
	qrexec.StopServicesOnSignal()
	cli := cmdline.Usage{Command: "qrexec-agent", Text: usage}
	fs := cli.FlagSet()
	listen := fs.String("listen", filepath.Join(qrexec.SocketDir, "agent.sock"), "")
	serviceDir := fs.String("service-dir", "/etc/pedos-rpc", "")
	dom0CID := fs.Uint("dom0-cid", 2, "")
	requestTimeout := fs.Duration("request-timeout", 10*time.Second, "")
	logFile := fs.String("log", "", "")
	stdio := fs.Bool("stdio", false, "")
	cli.ParseOptionsOnly(fs, os.Args[1:])
	switch {
	case *requestTimeout <= 0:
		cli.Fail("--request-timeout %v: the request phase needs some time, or every call fails", *requestTimeout)
	case *dom0CID > math.MaxUint32:
		// Compared as the 32-bit peer id: a larger one would stand for another.
		cli.Fail("--dom0-cid %d: a vsock context id is below 2^32", *dom0CID)
	}
	log, err := qrexec.NewLogger(*logFile)
	if err != nil {
		fatal(err)
	}
	// A service runs in its user's home directory, where a relative path
	// would mean something else.
	if *serviceDir, err = filepath.Abs(*serviceDir); err != nil {
		fatal(fmt.Errorf("--service-dir: %w", err))
	}
	a := &qrexec.Agent{ServiceDir: *serviceDir, RequestTimeout: *requestTimeout, Log: log}
	if *stdio {
		a.ServeCall(qrexec.StdioConn())
		return
	}
	l, err := qrexec.Listen(*listen)
	if errors.Is(err, qrexec.ErrBadAddress) {
		cli.Fail("--listen %v", err)
	}
	if err != nil {
		fatal(err)
	}
	fromDom0 := func(conn net.Conn) bool {
		cid, isVsock := qrexec.PeerCID(conn)
		return !isVsock || cid == uint32(*dom0CID)
	}
	fatal(a.Serve(l, fromDom0))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "qrexec-agent:", err)
	os.Exit(1)
}
