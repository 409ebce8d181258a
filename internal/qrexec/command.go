package qrexec

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"pedos.dev/updates/internal/qrexec/policy"
)

// CommandCall is a shell command line dom0 runs as User in Domain, whose
// agent is found with the domains configuration (agent=) or in SockDir.
// Dom0's calls are not subject to policy. A positive Timeout bounds the
// whole call (C7): when it passes, the call is abandoned with ExitFailure.
// Without one, the agent must still answer the request within
// AnswerTimeout (0: DefaultAnswerTimeout), as the daemon requires of it
// when it relays a call.
type CommandCall struct {
	DomainsFile, SockDir   string
	Domain, User, Command  string
	Timeout, AnswerTimeout time.Duration
}

// Run runs the command with s connected and returns its exit status.
func (c CommandCall) Run(s Streams) (int, error) {
	if c.Domain == policy.Dom0 {
		// The reference runs such a command locally; here dom0 has no agent,
		// and its own commands need no qrexec.
		return ExitFailure, errors.New("qrexec: dom0 is where this runs: it has no qrexec agent; run the command directly")
	}
	domains, err := DomainsOrDefault(c.DomainsFile)
	if err != nil {
		return ExitFailure, err
	}
	addr := AgentAddress(domains, c.SockDir, c.Domain)
	if addr == filepath.Join(c.SockDir, c.Domain, "agent.sock") {
		// The domain's directory is its own; the one it is in must be dom0's
		// (C1). A missing one (the daemon's unit stopped and its runtime
		// directory went) is said below as any unreachable agent is.
		if err := CheckSockDir(c.SockDir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return ExitFailure, fmt.Errorf("qrexec: %w", err)
		}
	}
	conn, err := Dial(addr)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		// A bare "no such file" names a socket, not the likely cause.
		return ExitFailure, fmt.Errorf("qrexec: cannot reach the agent of %s: %w (is %s running, with its qrexec-agent, and is the domain name right?)", c.Domain, err, c.Domain)
	}
	if err != nil {
		return ExitFailure, fmt.Errorf("qrexec: %s: %w", c.Domain, err)
	}
	defer conn.Close()
	if s.Stderr != nil {
		// Not a Closer: the remote's stderr EOF must not close the stderr
		// that our own messages about the rest of the call go to.
		s.Stderr = struct{ io.Writer }{s.Stderr}
	}
	code, err := c.call(conn, s)
	refused, isRefusal := errors.AsType[*RefusedError](err)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The wrapped error would read as a lost connection; it was our
		// own deadline.
		err = fmt.Errorf("%s: no exit status within --timeout %v: the call was ended (and with it the command there, if it had started)", c.Domain, c.Timeout)
	case isRefusal && refused.Code == ExitFailure && c.User != "" && c.User != "DEFAULT":
		// The agent refuses a command it could not start, mostly for its
		// user; the reason is in its log, not in the refusal.
		err = fmt.Errorf("%s: the agent did not start the command as user %s: no such user there, or the agent may not switch to it (its log says which)", c.Domain, c.User)
	case err != nil:
		err = fmt.Errorf("%s: %w", c.Domain, err)
	}
	return code, err
}

// call makes the call on conn, ended at Timeout if there is one. The
// connection's deadline ends a call waiting for the domain; the timer also
// ends one stuck writing to a stdout nobody reads, which no deadline
// reaches (the copy writing there is left behind, and the program exits).
func (c CommandCall) call(conn Conn, s Streams) (int, error) {
	req := Request{User: c.User, Command: c.Command}
	// An agent that accepted the connection but does not answer (C7) is
	// stuck, not slow: it answers before the command runs.
	answerTimeout := cmp.Or(c.AnswerTimeout, DefaultAnswerTimeout)
	answerBy, deadline := time.Now().Add(answerTimeout), time.Now().Add(c.Timeout)
	if c.Timeout > 0 && deadline.Before(answerBy) {
		answerBy = deadline
	}
	conn.SetDeadline(answerBy)
	err := Start(conn, MsgExecCommand, req)
	if refused, ok := errors.AsType[*RefusedError](err); ok {
		return refused.Code, err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && answerBy != deadline {
		// Not wrapped: Run would take it for the --timeout's.
		return ExitFailure, fmt.Errorf("qrexec: the agent did not answer within %v: it may be stuck (%v)", answerTimeout, err)
	}
	if err != nil {
		return ExitFailure, err
	}
	if c.Timeout <= 0 {
		conn.SetDeadline(time.Time{})
		return Run(conn, s)
	}
	conn.SetDeadline(deadline)
	type outcome struct {
		code int
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		code, err := Run(conn, s)
		done <- outcome{code, err}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case o := <-done:
		return o.code, o.err
	case <-timer.C:
		// Run closes conn: the agent sees the caller leave and kills the command.
		return ExitFailure, os.ErrDeadlineExceeded
	}
}

// DefaultAnswerTimeout is how long dom0's own command calls wait for the
// agent's answer to their request: the daemon's default request phase.
const DefaultAnswerTimeout = 10 * time.Second

// DomainsOrDefault loads the domains configuration at path; a missing file
// means no domain has settings beyond the defaults.
func DomainsOrDefault(path string) (*policy.Domains, error) {
	domains, err := policy.LoadDomains(path)
	if errors.Is(err, os.ErrNotExist) {
		return policy.ParseDomains(path, nil)
	}
	return domains, err
}

// SplitService splits SERVICE[+ARG].
func SplitService(s string) (service, argument string) {
	service, argument, _ = strings.Cut(s, "+")
	return service, argument
}

// NewLogger logs to the file at path (appending), or to stderr if path is
// empty. slog quotes values, so names from domains cannot forge log lines.
func NewLogger(path string) (*slog.Logger, error) {
	w := os.Stderr
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log: %w", err)
		}
		w = f
	}
	return slog.New(slog.NewTextHandler(w, nil)), nil
}

// OneProcessor limits the Go scheduler to one processor, unless GOMAXPROCS
// says otherwise. A qrexec process moves bytes between descriptors and
// starts processes: the kernel does the work. With a processor per CPU,
// the scheduler's spinning threads and cross-CPU wake-ups took a tenth to
// a fifth of the daemon's CPU time per call (docs/qrexec-protocol.md
// "Performance"); blocking system calls still run in parallel.
func OneProcessor() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
