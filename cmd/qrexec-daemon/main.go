// Command qrexec-daemon is dom0's side of qrexec: it decides every call from
// a domain with the policy, runs calls to dom0's services itself and relays
// the others to the target domain's agent (docs/qrexec-protocol.md).
package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/qrexec/policy"
)

const usage = `Usage: qrexec-daemon [options]
       qrexec-daemon [options] --log FILE --stdio DOMAIN

Serves calls from every domain of the domains configuration (dom0 itself is
never a caller). A call's source domain is known only from where it arrived:
  SOCKDIR/<domain>/daemon.sock   one Unix socket per domain; the directory
                                 must be reachable only by dom0 and <domain>
                                 (created 0700 if missing; one owned by
                                 another user than root, or with group or
                                 other permissions, is refused)
  vsock (--vsock-port)           the peer's CID, mapped by cid= in the config
  --stdio DOMAIN                 one call on stdin/stdout, from DOMAIN (for
                                 an ssh forced command or a serial line);
                                 needs --log, as stderr goes to the caller
Calls to dom0 run SERVICE+ARG or SERVICE from the service directory;
calls to another domain go to its agent: agent= in the configuration, else
SOCKDIR/<domain>/agent.sock. The policy is reloaded for every call.

Options:
  --domains FILE         domains configuration, listing the domains served
                         (default /etc/pedos/domains.conf)
  --policy-dir DIR       policy files (default /etc/pedos/policy.d)
  --service-dir DIR      dom0's services (default /etc/pedos-rpc)
  --sockdir DIR          per-domain socket directories (default /run/pedos/qrexec)
  --vsock-port PORT      also listen on this vsock port (default: no vsock)
  --no-unix              do not listen on Unix sockets (vsock only)
  --max-calls N          calls in progress per domain (default 16)
  --request-timeout DUR  limit on the request phase, above 0 (default 10s)
  --log FILE             append the log here instead of stderr (required with --stdio)
  --stdio DOMAIN         serve one call from DOMAIN on stdin/stdout, then exit
  --version              print the release and commit, and exit

Exit status: 0 after the call with --stdio (whatever its outcome); 1 cannot
start (log, domains, listeners) or no listener is left; 2 usage error.
Otherwise it serves until a signal (SIGTERM, SIGINT, SIGHUP) ends it, and the
services it runs with it.

Examples:
  qrexec-daemon --sockdir /run/pedos/qrexec
  qrexec-daemon --vsock-port 512 --no-unix
  # in /root/.ssh/authorized_keys of dom0 (root: the services need it), for the
  # UpdateVM's key; the packages install the daemon only in /usr/lib/pedos/bin:
  restrict,command="/usr/lib/pedos/bin/qrexec-daemon --stdio sys-firewall --log /var/log/pedos/qrexec-stdio.log" ssh-ed25519 AAAA...
`

func main() {
	qrexec.OneProcessor()
	qrexec.StopServicesOnSignal()
	cli := cmdline.Usage{Command: "qrexec-daemon", Text: usage}
	fs := cli.FlagSet()
	domainsFile := fs.String("domains", policy.DefaultDomainsFile, "")
	policyDir := fs.String("policy-dir", policy.DefaultDir, "")
	serviceDir := fs.String("service-dir", "/etc/pedos-rpc", "")
	sockDir := fs.String("sockdir", qrexec.SocketDir, "")
	vsockPort := fs.Uint("vsock-port", 0, "")
	noUnix := fs.Bool("no-unix", false, "")
	maxCalls := fs.Int("max-calls", 16, "")
	requestTimeout := fs.Duration("request-timeout", 10*time.Second, "")
	logFile := fs.String("log", "", "")
	stdioDomain := fs.String("stdio", "", "")
	cli.ParseOptionsOnly(fs, os.Args[1:])
	switch {
	case *maxCalls < 1:
		cli.Fail("--max-calls %d: at least 1 call per domain must be allowed", *maxCalls)
	case *requestTimeout <= 0:
		cli.Fail("--request-timeout %v: the request phase needs some time, or every call fails", *requestTimeout)
	case *stdioDomain != "" && *logFile == "":
		// Over ssh, stderr goes back to the calling domain: dom0's log
		// (policy files and lines, services' stderr) must not (spec
		// "Services").
		cli.Fail("--stdio needs --log FILE: standard error goes back to the calling domain")
	case *stdioDomain == "" && *noUnix && *vsockPort == 0:
		cli.Fail("nothing to listen on: --no-unix without --vsock-port")
	case *vsockPort > math.MaxUint32:
		cli.Fail("--vsock-port %d: a vsock port is below 2^32", *vsockPort)
	}
	log, err := qrexec.NewLogger(*logFile)
	if err != nil {
		fatal(err)
	}
	if *stdioDomain != "" {
		// Over ssh, stderr is the calling domain's: why dom0 cannot serve
		// it (paths, its configuration) goes to dom0's log only.
		fatal = func(err error) {
			log.Error("cannot serve the call", "err", err)
			fmt.Fprintln(os.Stderr, "qrexec-daemon: cannot serve the call; the reason is in dom0's log")
			os.Exit(1)
		}
	}
	// A service runs in its user's home directory, where a relative path
	// would mean something else.
	if *serviceDir, err = filepath.Abs(*serviceDir); err != nil {
		fatal(fmt.Errorf("--service-dir: %w", err))
	}
	// Only the domains listed are served: without the file, none.
	domains, err := policy.LoadDomains(*domainsFile)
	if err == nil && len(domains.Names()) == 0 {
		err = fmt.Errorf("%s lists no domain other than dom0, which is never a caller", *domainsFile)
	}
	if err != nil {
		fatal(fmt.Errorf("no domains to serve: %w", err))
	}
	d := &qrexec.Daemon{
		Domains: domains, PolicyDir: *policyDir, ServiceDir: *serviceDir, SockDir: *sockDir,
		MaxCalls: *maxCalls, RequestTimeout: *requestTimeout, Log: log,
	}
	if *stdioDomain != "" {
		if _, ok := domains.Lookup(*stdioDomain); !ok || *stdioDomain == "dom0" {
			fatal(fmt.Errorf("--stdio %q: not a domain of %s", *stdioDomain, *domainsFile))
		}
		d.ServeCall(qrexec.StdioConn(), *stdioDomain)
		return
	}
	// The policy is read for every call, so one that cannot be read now
	// may be fixed without a restart; until then every call fails closed
	// (docs/qrexec-policy.md "Files"). Say so now, not at the first call.
	if _, err := policy.Load(*policyDir); err != nil {
		log.Warn("the policy cannot be loaded: every call is refused until it is fixed", "err", err)
	}
	errs := make(chan error, 2)
	if *vsockPort != 0 {
		l, err := qrexec.Listen(fmt.Sprintf("vsock:%d", *vsockPort))
		if err != nil {
			fatal(err)
		}
		go func() { errs <- d.ServeVsock(l) }()
	}
	if !*noUnix {
		go func() { errs <- d.ServeUnix() }()
	}
	fatal(<-errs)
}

// fatal reports why the daemon cannot start and exits 1.
var fatal = func(err error) {
	fmt.Fprintln(os.Stderr, "qrexec-daemon:", err)
	os.Exit(1)
}
