package qrexec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"pedos.dev/updates/internal/programs"
)

// errServiceNotFound is a call to a service the target does not have (127).
var errServiceNotFound = errors.New("no such service")

// serviceCommand prepares a service call as spec/qrexec.md "Conventions a
// service relies on" says: the file SERVICE+ARG, else SERVICE, in dir; an
// executable file (or symlink to one) is run, any other file names the
// program (first word) and its leading arguments; the argument is the last
// argv entry; the environment is cleaned of QREXEC* (C3) then set by us.
func serviceCommand(dir string, req Request) (*exec.Cmd, error) {
	names := []string{req.Service}
	if req.Argument != "" {
		names = []string{req.Service + "+" + req.Argument, req.Service}
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			// A link to nothing is a service file that cannot run, not an
			// absent one: SERVICE+ARG must not fall back to SERVICE.
			if _, lerr := os.Lstat(path); lerr == nil {
				return nil, fmt.Errorf("service file %s: a symbolic link to nothing: %w", path, err)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("service file: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("service file %s: not a regular file (mode %v)", path, fi.Mode())
		}
		argv := []string{path}
		if fi.Mode()&0o111 == 0 {
			if argv, err = programNamedIn(path); err != nil {
				return nil, err
			}
		}
		if req.Argument != "" {
			argv = append(argv, req.Argument)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = serviceEnv(req)
		return cmd, nil
	}
	return nil, fmt.Errorf("%w %q in %s", errServiceNotFound, req.Service, dir)
}

// programNamedIn reads a non-executable service file: its first line that is
// neither empty nor a comment, split on spaces, is the program and its
// leading arguments. No shell is involved. A file starting with "#!" is a
// script someone forgot to make executable: its first command, run without
// its shell, would get its words literally ("$@" and all), so it is refused.
func programNamedIn(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("service file: %w", err)
	}
	if bytes.HasPrefix(data, []byte("#!")) {
		return nil, fmt.Errorf("service file %s is a script that is not executable: chmod +x it", path)
	}
	for line := range strings.Lines(string(data)) {
		if argv := strings.Fields(line); len(argv) > 0 && !strings.HasPrefix(argv[0], "#") {
			return argv, nil
		}
	}
	return nil, fmt.Errorf("service file %s: not executable and names no program", path)
}

// serviceEnv is our environment without any QREXEC* variable, plus the
// variables a service relies on (spec/qrexec.md).
func serviceEnv(req Request) []string {
	env := cleanEnv()
	full := req.Service
	if req.Argument != "" {
		full += "+" + req.Argument
		env = append(env, "QREXEC_SERVICE_ARGUMENT="+req.Argument)
	}
	env = append(env, "QREXEC_REMOTE_DOMAIN="+req.Source, "QREXEC_SERVICE_FULL_NAME="+full)
	if keyword, ok := strings.CutPrefix(req.Target, "@"); ok {
		return append(env, "QREXEC_REQUESTED_TARGET_TYPE=keyword", "QREXEC_REQUESTED_TARGET_KEYWORD="+keyword)
	}
	return append(env, "QREXEC_REQUESTED_TARGET_TYPE=name", "QREXEC_REQUESTED_TARGET="+req.Target)
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QREXEC") {
			env = append(env, kv)
		}
	}
	return env
}

// runAs makes cmd run as the named user: "" and "DEFAULT" mean whoever we
// are; another user needs us to be root. The user gets its own groups from
// the group database, as a login would (a service may need to read what
// its user's groups may read), and never ours: root's groups would give
// it what its user must not have. It starts in its home directory, or in
// "/" if that does not exist (nobody's /nonexistent).
func runAs(cmd *exec.Cmd, name string) error {
	if name == "" || name == "DEFAULT" {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("user %q: %w", name, err)
	}
	// Already that user (user=root under a root agent): no switch, but the
	// user's directory and variables all the same.
	if u.Uid != strconv.Itoa(os.Geteuid()) {
		if os.Geteuid() != 0 {
			return fmt.Errorf("user %q: only root can run commands as another user", name)
		}
		groupIDs, err := u.GroupIds()
		if err != nil {
			return fmt.Errorf("user %q: its groups: %w", name, err)
		}
		cred := &syscall.Credential{Uid: parseID(u.Uid), Gid: parseID(u.Gid), Groups: []uint32{}}
		for _, g := range groupIDs {
			cred.Groups = append(cred.Groups, parseID(g))
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.Dir = "/"
	if fi, err := os.Stat(u.HomeDir); err == nil && fi.IsDir() {
		cmd.Dir = u.HomeDir
	}
	cmd.Env = append(cmd.Env, "HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username)
	return nil
}

// parseID is a uid or gid of the user database, which os/user has checked
// to be a number.
func parseID(s string) uint32 {
	id, _ := strconv.ParseUint(s, 10, 32)
	return uint32(id)
}

// StartPiped starts cmd, whose pipes were made with the errors pipeErrs,
// unless one of them failed (EMFILE, say): then it starts nothing and
// returns that error, and Start, handed it, closes the pipes that were made
// (starting anyway would leave a process no one waits for).
func StartPiped(cmd *exec.Cmd, pipeErrs ...error) error {
	if err := errors.Join(pipeErrs...); err != nil {
		cmd.Err = errors.Join(cmd.Err, err)
	}
	return cmd.Start()
}

// serveProcess runs cmd as the service end of an accepted call on conn: the
// caller's stdin messages feed cmd's stdin, cmd's stdout (and, for dom0's
// commands, stderr) go back as messages, then the exit status. Otherwise
// stderr goes to log, never to the caller. Every buffer is one message, so
// a slow side stops the other (backpressure). If the caller hangs up
// (hangup.go) or breaks the protocol, cmd is killed.
func serveProcess(conn Conn, cmd *exec.Cmd, sendStderr bool, log *slog.Logger) {
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	var stderr io.ReadCloser
	var err3 error
	var stderrForLog *os.File // the write end the service gets, when stderr goes to the log
	if sendStderr {
		stderr, err3 = cmd.StderrPipe()
	} else {
		// A pipe of our own, read apart from the pumps the exit status
		// waits for: a child the service left running with its stderr (a
		// background job) must not hold back the call's end, as it may
		// with stdout (the caller's data); its lines still reach the log.
		// Not StderrPipe: Wait would close its read end, losing lines not
		// yet read and breaking the pipe under the job (SIGPIPE).
		var r *os.File
		if r, stderrForLog, err3 = os.Pipe(); err3 == nil {
			stderr, cmd.Stderr = r, stderrForLog
		}
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, so that a kill also reaches the children that
	// hold its stdout (C7).
	cmd.SysProcAttr.Setpgid = true
	enlargePipe(stdin)
	enlargePipe(stdout)
	err := startService(cmd, err1, err2, err3)
	if stderrForLog != nil {
		stderrForLog.Close() // the service has its copy
		if err != nil {
			stderr.Close()
		}
	}
	if err != nil {
		if _, statErr := os.Stat(cmd.Path); statErr == nil && errors.Is(err, fs.ErrNotExist) {
			// The file is there: what exec could not find is what it needs.
			err = fmt.Errorf("%w (the program exists: its interpreter, the #! line, or its dynamic loader is missing)", err)
		}
		if errors.Is(err, syscall.ENOEXEC) {
			err = fmt.Errorf("%w (neither a program for this machine nor a script with a #! line: a script needs one, such as #!/bin/sh)", err)
		}
		log.Error("cannot start", "program", cmd.Path, "err", err)
		refuse(conn, ExitFailure)
		return
	}
	kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var ending sync.Once
	endCall := func(err error) { // by the caller, who left or broke the protocol
		ending.Do(func() {
			log.Warn("call ended by the caller", "err", err)
			kill()
		})
	}
	out := newMessageWriter(conn)
	if err := out.send(MsgAccept, nil); err != nil {
		kill()
	}
	hungUp, stopWatching := watchHangup(conn)
	defer stopWatching()
	done := make(chan struct{})
	go func() {
		if err := receiveStdin(conn, stdin, done); err != nil {
			endCall(err)
		}
	}()
	go func() {
		select {
		case <-hungUp:
			select {
			case <-done: // the caller left after the exit status: the call is over
			default:
				endCall(errCallerLeft)
			}
		case <-done:
		}
	}()
	var pumps sync.WaitGroup
	pumps.Go(func() { out.pump(MsgStdout, stdout) })
	logged := make(chan struct{})
	if sendStderr {
		close(logged)
		pumps.Go(func() { out.pump(MsgStderr, stderr) })
	} else {
		go func() {
			defer close(logged)
			defer stderr.Close()
			logLines(stderr, log, "service stderr")
		}()
	}
	pumps.Wait()
	status := ExitStatus(cmd.Wait())
	// The service's own lines come before its end in the log; a child's,
	// holding the pipe after it, come later, without holding the call.
	select {
	case <-logged:
	case <-time.After(stderrGrace):
	}
	serviceEnded(cmd)
	close(done)
	if err := out.send(MsgExit, uint32Payload(uint32(status))); err != nil {
		log.Warn("exit status not delivered", "err", err)
	}
	log.Info("call finished", "status", status)
}

// errCallerLeft is a call's caller that hung up before its end.
var errCallerLeft = errors.New("the caller hung up")

// receiveStdin moves the caller's stdin messages into w until EOF, then
// waits for done (the exit status sent). Data after EOF, or a connection
// lost before EOF, is an error. The connection's end after EOF is not: the
// caller may have only half-closed it, and still read the output
// (hangup.go).
func receiveStdin(conn Conn, w io.WriteCloser, done <-chan struct{}) error {
	in := newDataReader(conn)
	defer in.close()
	stdin := newSink(w) // a service that stopped reading its stdin just loses the rest
	open := true
	for {
		t, n, err := in.next()
		if err == nil && t == MsgStdin && open {
			err = in.deliver(t, n, stdin)
		}
		select {
		case <-done:
			return nil // the call is over; whatever happens on conn is moot
		default:
		}
		switch {
		case err == io.EOF && !open:
			return nil
		case err != nil:
			w.Close()
			return err
		case t != MsgStdin || !open:
			w.Close()
			return fmt.Errorf("%w: message type %d during the call", ErrProtocol, t)
		case n == 0:
			open = false
			stdin.close()
		}
	}
}

// maxStderrLines is how many lines of one call's stderr are logged: a
// service's stderr may carry what its caller sent, and no call should
// take a domain's whole log burst (callLogBurst) for itself (C6).
const maxStderrLines = 100

// stderrGrace is how long a call's end waits, after the service's exit, for
// the end of its stderr in the log: at once, unless a child it left running
// holds it.
const stderrGrace = time.Second

// logLines logs each line of r, the stderr of what (a service, a target's
// agent), long lines in pieces, so that it reaches dom0's log, quoted by
// slog against log injection (S2); after maxStderrLines, one line says the
// rest is not logged, and it is read to its end, so the writer never
// blocks on it.
func logLines(r io.Reader, log *slog.Logger, what string) {
	br := bufio.NewReaderSize(r, 4096)
	for logged := 0; ; logged++ {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && logged == maxStderrLines {
			log.Warn("more "+what+", not logged", "lines_logged", maxStderrLines)
			io.Copy(io.Discard, br)
			return
		}
		if len(line) > 0 {
			log.Info(what, "line", string(bytes.TrimSuffix(line, []byte("\n"))))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// ExitStatus is a process's exit status, 128+N for a signal as a shell
// says, or ExitFailure when it did not run.
func ExitStatus(err error) int {
	if status, ran := programs.ExitStatus(err); ran {
		return status
	}
	return ExitFailure
}

// refuse ends a call that will not run with code.
func refuse(conn Conn, code uint32) {
	conn.Write(appendMessage(nil, MsgRefuse, uint32Payload(code)))
}
