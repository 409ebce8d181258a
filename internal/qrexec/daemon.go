package qrexec

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/qrexec/policy"
)

// Daemon is dom0's side of calls from domains: it decides each call with the
// policy, runs calls to dom0 itself and relays the others to the target's
// agent. It knows a caller's domain only from where the connection arrived.
type Daemon struct {
	Domains    *policy.Domains
	PolicyDir  string // *.policy files, reloaded for every call
	ServiceDir string // dom0's services
	SockDir    string // SOCKDIR/<domain>/daemon.sock and agent.sock
	// MaxCalls caps the calls of one domain in progress at once (C6); it
	// must be at least 1.
	MaxCalls int
	// RequestTimeout bounds the request phase: hello, request, policy and
	// the target's answer (C6).
	RequestTimeout time.Duration
	Log            *slog.Logger

	mu     sync.Mutex
	active map[string]int
	// drops logs connections dropped (over MaxCalls, from an unknown
	// vsock peer) per domain or peer, counted beyond the first; refusals
	// logs denied calls and failed requests per domain, counted beyond
	// refusalBurst; calls logs the lines of allowed calls per domain,
	// counted beyond callLogBurst (C6).
	drops, refusals, calls floodLog
}

// refusalBurst is how many denied calls and failed requests of one domain
// are logged one by one in floodLogInterval: enough to see what a domain
// tried, not enough to fill dom0's disk.
const refusalBurst = 20

// callLogBurst is how many lines the allowed calls of one domain (or, in
// an agent, of one caller) log in floodLogInterval before they are only
// counted: a call logs two lines and at most maxStderrLines+1 of its
// service's stderr, so a call is logged whole, and calls made in a loop
// cannot fill the log (C6).
const callLogBurst = 200

// callLogger is log, of domain's calls, for the lines of the allowed call
// named call, within callLogBurst lines per interval.
func callLogger(log *slog.Logger, f *floodLog, domain, call string) *slog.Logger {
	return floodLogger(log, f, domain, callLogBurst, "more lines of allowed calls, counted only", call)
}

// ServeUnix listens on SOCKDIR/<domain>/daemon.sock for every domain in
// Domains and serves their calls. A domain whose socket cannot be set up is
// logged and not served; the others are. It returns only when no domain's
// listener is left.
func (d *Daemon) ServeUnix() error {
	if err := os.MkdirAll(d.SockDir, 0o755); err != nil {
		return err
	}
	if err := CheckSockDir(d.SockDir); err != nil {
		return err
	}
	var serving sync.WaitGroup
	for _, name := range d.Domains.Names() {
		l, err := listenInDomainDir(filepath.Join(d.SockDir, name))
		if err != nil {
			d.Log.Error("cannot listen for the domain's calls, which are not served", "domain", name, "err", err)
			continue
		}
		serving.Go(func() {
			serveListener(l, d.Log, func(conn net.Conn) { d.ServeCall(conn, name) })
		})
	}
	serving.Wait()
	return fmt.Errorf("no domain's calls are served on Unix sockets in %s (the log says why)", d.SockDir)
}

// listenInDomainDir listens on dir/daemon.sock, making dir 0700 if it is
// missing; the directory is the access boundary (only dom0 and its domain
// reach it), so the socket itself is open to whoever gets there. The domain
// can write in dir, so nothing there is followed: whatever is at the name
// is removed (unlink does not follow a link), and the mode is set through a
// descriptor checked to be a socket (a chmod by name would follow a link
// swapped in after the bind and make any file of dom0's writable to all).
func listenInDomainDir(dir string) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o700); errors.Is(err, fs.ErrExist) {
		// A link to nothing there: say it is a link.
		return nil, cmp.Or(checkDomainDir(dir), err)
	} else if err != nil {
		return nil, err
	}
	if err := checkDomainDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "daemon.sock")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := chmodSocket(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// checkDomainDir refuses a domain's socket directory that someone other
// than dom0 and the domain could reach, since whoever reaches daemon.sock
// calls as the domain (C1): it must belong to root (or to the daemon's own
// user, which is dom0 too) and give group and others no access. One the
// daemon made always passes; one made beforehand with another mode or
// owner is a mistake for the administrator to fix, not to guess about.
func checkDomainDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("%s is a symbolic link, which could lead anywhere: make it a directory of its own (mkdir -m 0700)", dir)
	case !ownedByDom0(st.Uid):
		return fmt.Errorf("%s belongs to uid %d, so others than dom0 may reach the domain's socket: chown root %s", dir, st.Uid, dir)
	case st.Mode&0o077 != 0:
		return fmt.Errorf("%s has mode %#o, so others than dom0 and the domain may call as the domain: chmod 0700 %s", dir, st.Mode&0o7777, dir)
	}
	return nil
}

// ServeVsock serves calls arriving on a vsock listener; the caller's domain
// is the one whose cid= is the peer's context id.
func (d *Daemon) ServeVsock(l net.Listener) error {
	return serveListener(l, d.Log, func(conn net.Conn) {
		cid, _ := PeerCID(conn)
		name, ok := d.Domains.ByCID(cid)
		if !ok {
			d.drops.count(fmt.Sprint("cid ", cid), func(count int) {
				d.Log.Warn("vsock connection from an unknown cid, dropped", "cid", cid, "count", count)
			})
			conn.Close()
			return
		}
		d.ServeCall(conn, name)
	})
}

// serveListener accepts connections and hands each to serve in its own
// goroutine, until l is closed.
func serveListener(l net.Listener, log *slog.Logger, serve func(net.Conn)) error {
	for {
		conn, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		if err != nil {
			log.Error("accept", "err", err) // e.g. out of file descriptors
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go serve(conn)
	}
}

// ServeCall serves one call from domain on conn and closes conn.
func (d *Daemon) ServeCall(conn Conn, domain string) {
	defer conn.Close()
	log := d.Log.With("domain", domain)
	if !d.acquire(domain) {
		// Refused without reading the request, so a flood costs little;
		// the caller still learns that its call failed, and not from a
		// broken pipe. 20 bytes fit in a new Unix connection's buffer,
		// but a vsock peer that advertises no room would hold the write,
		// and this goroutine and descriptor, for ever without a deadline.
		conn.SetDeadline(time.Now().Add(d.RequestTimeout))
		conn.Write(appendMessage(append([]byte(nil), helloMessage...), MsgRefuse, uint32Payload(ExitFailure)))
		d.drops.count(domain, func(count int) {
			log.Warn("too many calls in progress, connection dropped", "limit", d.MaxCalls, "count", count)
		})
		return
	}
	defer d.release(domain)
	const refusalSummary = "more refused calls or failed requests, counted only"
	setRequestDeadline(conn, d.RequestTimeout, log)
	_, req, err := readRequest(conn, MsgCall)
	if err != nil {
		logBadRequest(conn, floodLogger(log, &d.refusals, domain, refusalBurst, refusalSummary, "").Warn, err)
		return
	}
	// A call is named in a flood's summary by its service and target; not
	// by its argument, which may be new in every call (a session id).
	call := req.Service + " to " + req.Target
	callAttrs := []any{"service", req.Service, "argument", req.Argument, "target", req.Target}
	refusals := floodLogger(log, &d.refusals, domain, refusalBurst, refusalSummary, call).With(callAttrs...)
	pol, err := policy.Load(d.PolicyDir)
	if err != nil {
		refusals.Error("policy error, every call is refused until it is fixed", "err", err)
		refuse(conn, ExitRefused)
		return
	}
	decision := pol.Evaluate(policy.Request{Source: domain, Target: req.Target, Service: req.Service, Argument: req.Argument}, d.Domains)
	if !decision.Allow {
		refusals.Warn("call denied", "reason", decision.Reason, "rule", decision.Rule, "notify", decision.Notify)
		refuse(conn, ExitRefused)
		return
	}
	log = callLogger(log, &d.calls, domain, call).With(callAttrs...)
	// notify= and autostart= are logged only: this daemon notifies no one
	// and starts no domain (docs/qrexec-policy.md).
	log.Info("call allowed", "to", decision.Target, "rule", decision.Rule, "user", decision.User,
		"notify", decision.Notify, "autostart", decision.Autostart)
	req.Source, req.User = domain, decision.User
	switch {
	case decision.Target == policy.Dom0:
		serveService(conn, d.ServiceDir, req, log)
	case strings.HasPrefix(decision.Target, "@dispvm:"):
		log.Error("disposable domains are not supported by this daemon")
		refuse(conn, ExitFailure)
	default:
		d.relay(conn, decision.Target, req, log)
	}
}

// relay forwards an allowed call to the target's agent; after the agent
// accepts, bytes are copied both ways unchanged (the caller's and the
// agent's decoders check them). The call ends when the agent closes, having
// sent the exit status. A caller's half-close is passed on to the agent,
// which reads EOF and goes on (hangup.go). If the caller hangs up, the
// agent's connection is closed at once, and the agent, seeing its hangup,
// ends the service: even a target that reads nothing of what is relayed
// to it cannot hold the caller's call slot (C6).
func (d *Daemon) relay(conn Conn, target string, req Request, log *slog.Logger) {
	agent, err := dial(AgentAddress(d.Domains, d.SockDir, target), log)
	if err != nil {
		log.Error("cannot reach the target's agent", "err", err)
		refuse(conn, ExitFailure)
		return
	}
	defer agent.Close()
	agent.SetDeadline(time.Now().Add(d.RequestTimeout))
	// The caller's request deadline runs out with the agent's: a second
	// more, so that a refusal for a silent target still reaches it (125,
	// not an EOF it cannot explain).
	setRequestDeadline(conn, d.RequestTimeout+time.Second, log)
	err = Start(agent, MsgExecService, req)
	if refused, ok := errors.AsType[*RefusedError](err); ok {
		log.Warn("the target refused the call", "code", refused.Code)
		refuse(conn, uint32(refused.Code))
		return
	}
	if err != nil {
		log.Error("the target's agent failed", "err", err)
		refuse(conn, ExitFailure)
		return
	}
	if _, err := conn.Write(appendMessage(nil, MsgAccept, nil)); err != nil {
		return
	}
	conn.SetDeadline(time.Time{})
	agent.SetDeadline(time.Time{})
	hungUp, stopWatching := watchHangup(conn)
	defer stopWatching()
	agentDone := make(chan struct{})
	go func() {
		relayBytes(agent, conn)
		closeWrite(agent)
	}()
	go func() {
		relayBytes(conn, agent)
		close(agentDone)
	}()
	// Not logged: a caller hangs up as soon as it has the exit status,
	// maybe before the agent has closed; a service it ends is in the
	// target's log.
	select {
	case <-agentDone:
	case <-hungUp:
	}
}

// closeWrite half-closes conn: the peer reads EOF but may still send.
func closeWrite(conn Conn) {
	if c, ok := conn.(interface{ CloseWrite() error }); ok {
		c.CloseWrite()
		return
	}
	conn.Close()
}

// AgentAddress is where the named domain's agent listens: its agent= in the
// domains configuration, else SOCKDIR/<domain>/agent.sock.
func AgentAddress(domains *policy.Domains, sockDir, domain string) string {
	if dom, ok := domains.Lookup(domain); ok && dom.Agent != "" {
		return dom.Agent
	}
	return filepath.Join(sockDir, domain, "agent.sock")
}

func (d *Daemon) acquire(domain string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active == nil {
		d.active = map[string]int{}
	}
	if d.active[domain] >= d.MaxCalls {
		return false
	}
	d.active[domain]++
	return true
}

func (d *Daemon) release(domain string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.active[domain]--
}

// readRequest sends our hello, then reads the peer's hello and a request of
// one of the wanted types.
func readRequest(conn Conn, wanted ...MsgType) (MsgType, Request, error) {
	if _, err := conn.Write(helloMessage); err != nil {
		return 0, Request{}, err
	}
	if err := readHello(conn); err != nil {
		return 0, Request{}, err
	}
	t, n, err := readHeader(conn)
	if err != nil {
		return 0, Request{}, err
	}
	if !slices.Contains(wanted, t) {
		return 0, Request{}, fmt.Errorf("%w: message type %d instead of a request", ErrProtocol, t)
	}
	untrustedPayload := make([]byte, n) // at most MaxRequestLen, checked by readHeader
	if _, err := io.ReadFull(conn, untrustedPayload); err != nil {
		return 0, Request{}, truncated(t, err)
	}
	req, err := DecodeRequest(t, untrustedPayload)
	return t, req, err
}

// setRequestDeadline bounds the request phase on conn (C6); a connection
// that cannot have a deadline (stdio on a regular file) is served without,
// logged.
func setRequestDeadline(conn Conn, timeout time.Duration, log *slog.Logger) {
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		log.Warn("the request phase has no time limit on this connection", "err", err)
	}
}

// logBadRequest answers a failed request phase and logs it with warn: a
// malformed but well-framed request is refused (126), anything else
// disconnected (C4, C6).
func logBadRequest(conn Conn, warn func(msg string, args ...any), err error) {
	if errors.Is(err, ErrInvalidRequest) {
		warn("invalid request refused", "err", err)
		refuse(conn, ExitRefused)
		return
	}
	warn("request phase failed, disconnected", "err", err)
}

// serveService runs an accepted service call from the service directory.
func serveService(conn Conn, dir string, req Request, log *slog.Logger) {
	cmd, err := serviceCommand(dir, req)
	if err == nil {
		err = runAs(cmd, req.User)
	}
	switch {
	case errors.Is(err, errServiceNotFound):
		log.Warn("call to a missing service", "err", err)
		refuse(conn, ExitNotFound)
		return
	case err != nil:
		log.Error("cannot run service", "err", err)
		refuse(conn, ExitFailure)
		return
	}
	conn.SetDeadline(time.Time{})
	serveProcess(conn, cmd, false, log)
}
