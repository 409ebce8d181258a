package lab

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// InitCommand is the hidden pedos-lab command that runs a domain's init.
const InitCommand = "domain-init"

// domainPath is PATH inside every domain: the project's programs first.
const domainPath = ProgramsDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// RunInit is a domain's first process: pid 1 of its pid namespace, in fresh
// mount, network, UTS and IPC namespaces (see startDomain). It builds the
// domain's root, reports on status (fd 3 of `up`'s child) and then serves
// the control socket: it runs the host's commands and the domain's services
// as its children, reaps every orphan, and on SIGTERM stops its services and
// exits — the kernel then kills whatever else still runs in the domain.
func RunInit(dir, domain string, role Role, status io.WriteCloser) error {
	l := Layout{Dir: dir}
	d := l.Domain(domain)
	err := closeInheritedFDs()
	if err == nil {
		err = recordSelf(d)
	}
	var ln *net.UnixListener
	if err == nil {
		ln, err = listenControl(d)
	}
	if err == nil {
		err = mountRoot(l, domain, role)
	}
	var startProcess func(string, []string, *os.ProcAttr) (*os.Process, error)
	if err == nil {
		startProcess, err = confinedThread(role)
	}
	if err != nil {
		fmt.Fprintf(status, "error: %v\n", err)
		status.Close()
		return err
	}
	os.Setenv("PATH", domainPath)
	in := &initProcess{
		domain:       domain,
		startProcess: startProcess,
		waiters:      map[int]chan syscall.WaitStatus{},
		service:      map[int]string{},
	}
	// Subscribe to SIGCHLD before anything can exit.
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	go in.reap(children)
	terminate := make(chan os.Signal, 1)
	signal.Notify(terminate, syscall.SIGTERM, syscall.SIGINT)
	go in.accept(ln)
	fmt.Fprintln(status, "ok")
	status.Close()
	log.Printf("domain %s (%s) up", domain, role)
	<-terminate
	in.stopServices(3 * time.Second)
	log.Printf("domain %s down", domain)
	return nil
}

// closeInheritedFDs closes every descriptor above the status pipe (fd 3)
// that this process inherited rather than opened: whatever its starter
// left open without close-on-exec (a shell's redirections, a test
// runner's pipes) would otherwise reach every process of the domain, and a
// directory among them is a path back to the host. Go opens its own
// descriptors close-on-exec, so those stay.
func closeInheritedFDs() error {
	// The status pipe itself is this process's alone, too.
	unix.CloseOnExec(3)
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 3 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
	return nil
}

func listenControl(d DomainLayout) (*net.UnixListener, error) {
	path, done, err := socketPath(d.Base, filepath.Base(d.controlPath()))
	if err != nil {
		return nil, err
	}
	defer done()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, os.Chmod(path, 0o600)
}

type initProcess struct {
	domain string
	// startProcess is os.StartProcess on the confined thread.
	startProcess func(string, []string, *os.ProcAttr) (*os.Process, error)
	mu           sync.Mutex
	waiters      map[int]chan syscall.WaitStatus // host commands by pid
	service      map[int]string                  // live services by pid
}

// reap collects every child and orphan of the domain (pid 1's duty) and
// hands each status to whoever waits for that pid.
func (in *initProcess) reap(children <-chan os.Signal) {
	for range children {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			in.mu.Lock()
			if name, ok := in.service[pid]; ok {
				log.Printf("service %s (pid %d) ended: %v", name, pid, ws)
				delete(in.service, pid)
			}
			if ch, ok := in.waiters[pid]; ok {
				ch <- ws
				delete(in.waiters, pid)
			}
			in.mu.Unlock()
		}
	}
}

// start runs argv in a new session with the given stdio. A service (name
// not empty) is only logged when it ends; for anything else the returned
// channel receives its exit status.
func (in *initProcess) start(argv, env []string, files []*os.File, service string) (int, <-chan syscall.WaitStatus, error) {
	if len(argv) == 0 {
		return 0, nil, errors.New("empty command")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 0, nil, err
	}
	// Holding the lock while starting makes the reaper wait until the
	// waiter is registered, however fast the child exits.
	in.mu.Lock()
	defer in.mu.Unlock()
	p, err := in.startProcess(path, argv, &os.ProcAttr{
		Dir: "/", Env: env, Files: files,
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return 0, nil, err
	}
	pid := p.Pid
	_ = p.Release() // the reaper, not os.Process, collects it
	if service != "" {
		in.service[pid] = service
		return pid, nil, nil
	}
	ch := make(chan syscall.WaitStatus, 1)
	in.waiters[pid] = ch
	return pid, ch, nil
}

func (in *initProcess) accept(ln *net.UnixListener) {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			log.Printf("control socket: %v", err)
			return
		}
		go in.serve(c)
	}
}

func (in *initProcess) serve(c *net.UnixConn) {
	defer c.Close()
	var req controlRequest
	files, err := receiveControl(c, &req)
	if err != nil {
		log.Printf("control request: %v", err)
		return
	}
	if req.Op == opExec && len(files) == 3 {
		in.exec(c, req, files)
		return
	}
	closeAll(files)
	var rep controlReply
	switch req.Op {
	case opExec:
		err = errors.New("exec needs stdin, stdout and stderr")
	case opService:
		rep.PID, err = in.startService(req)
	case opMirror:
		err = serveMirror(req.Addr)
	default:
		err = fmt.Errorf("unknown request %q", req.Op)
	}
	if err != nil {
		rep.Error = err.Error()
	}
	_ = sendControl(c, rep)
}

// exec runs a host command and reports its exit; the command's process
// group is killed when the host goes away first (its caller was killed or
// cancelled), so that no command outlives the one waiting for it.
func (in *initProcess) exec(c *net.UnixConn, req controlRequest, stdio []*os.File) {
	pid, exited, err := in.start(req.Argv, req.Env, stdio, "")
	closeAll(stdio)
	if err != nil {
		_ = sendControl(c, controlReply{Error: err.Error(), Exit: ptr(127)})
		return
	}
	_ = sendControl(c, controlReply{PID: pid})
	var mu sync.Mutex
	running := true
	go func() {
		for {
			var sig controlRequest
			_, err := receiveControl(c, &sig)
			mu.Lock()
			if running {
				switch {
				case err != nil:
					_ = syscall.Kill(-pid, syscall.SIGKILL)
				case sig.Op == opSignal && sig.Signal > 0:
					_ = syscall.Kill(-pid, syscall.Signal(sig.Signal))
				}
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	ws := <-exited
	mu.Lock()
	running = false
	mu.Unlock()
	_ = sendControl(c, controlReply{Exit: ptr(exitCode(ws))})
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func ptr[T any](v T) *T { return &v }

// serviceLog is where a domain's service NAME writes its output, inside the
// domain.
func serviceLog(name string) string { return "/var/log/pedos-lab/" + filepath.Base(name) + ".log" }

// startService runs a long-lived program of the domain with its output in
// serviceLog.
func (in *initProcess) startService(req controlRequest) (int, error) {
	logFile := serviceLog(req.Name)
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return 0, err
	}
	out, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	pid, _, err := in.start(req.Argv, req.Env, []*os.File{null, out, out}, req.Name)
	if err != nil {
		return 0, fmt.Errorf("service %s: %w", req.Name, err)
	}
	log.Printf("service %s started (pid %d): %q", req.Name, pid, req.Argv)
	return pid, nil
}

// stopServices sends SIGTERM to every service and waits for them a while.
func (in *initProcess) stopServices(grace time.Duration) {
	in.mu.Lock()
	for pid := range in.service {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	in.mu.Unlock()
	for deadline := time.Now().Add(grace); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		in.mu.Lock()
		n := len(in.service)
		in.mu.Unlock()
		if n == 0 {
			return
		}
	}
}

// serveMirror serves the mirror's files over plain HTTP on addr, with an
// access log that shows what the UpdateVM fetched.
func serveMirror(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(MirrorAccessLog), 0o755); err != nil {
		return err
	}
	accessLog, err := os.OpenFile(MirrorAccessLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	handler := loggedHandler(http.FileServer(http.Dir(MirrorDocRoot)), accessLog)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { log.Printf("mirror: %v", srv.Serve(ln)) }()
	log.Printf("mirror serving %s on http://%s/", MirrorDocRoot, addr)
	return nil
}

// MirrorAccessLog is the mirror's access log, inside the mirror domain:
// one line "TIME METHOD PATH STATUS BYTES" per request.
const MirrorAccessLog = "/var/log/mirror/access.log"

// loggedHandler serves with files and writes one access log line per
// request. The path is logged as it was sent, percent-escaped: the
// UpdateVM may be the attacker's, and a decoded path's newline would
// write a line of its own making.
func loggedHandler(files http.Handler, accessLog io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		files.ServeHTTP(rec, r)
		fmt.Fprintf(accessLog, "%s %s %s %d %d\n", time.Now().UTC().Format(time.RFC3339), r.Method, r.URL.EscapedPath(), rec.status, rec.bytes)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}
