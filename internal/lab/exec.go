package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Command is a command to run inside a domain.
type Command struct {
	Args []string
	// Env is added to the domain's environment (KEY=VALUE; it may override).
	Env []string
	// Stdin, Stdout and Stderr are connected as os/exec connects them: an
	// *os.File is passed to the command as it is (a terminal stays one),
	// anything else through a pipe; nil is /dev/null.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Signals are forwarded to the command's process group.
	Signals <-chan os.Signal
}

// domainEnv is the environment of every command in a domain.
func domainEnv(domain string, extra []string) []string {
	env := map[string]string{
		"PATH": domainPath, "HOME": "/root", "USER": "root", "LOGNAME": "root",
		"SHELL": "/bin/sh", "LANG": "C.UTF-8", "PEDOS_DOMAIN": domain,
	}
	order := []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "PEDOS_DOMAIN"}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		if _, seen := env[k]; !seen {
			order = append(order, k)
		}
		env[k] = v
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// Run runs c inside the domain (its namespaces, its root, as root) and
// returns its exit status (128+N if a signal N ended it; 127 if it could
// not be started, with the reason on its stderr). The error is for the lab
// itself failing. Cancelling ctx kills the command's process group.
func (l *Lab) Run(ctx context.Context, domain string, c Command) (int, error) {
	if len(c.Args) == 0 {
		return 0, errors.New("lab: no command")
	}
	if names := l.domainNames(); !slices.Contains(names, domain) {
		return 0, fmt.Errorf("lab %s has no domain %q: its domains are %s", l.Dir, domain, strings.Join(names, ", "))
	}
	stdio, wait, err := connectStdio(c.Stdin, c.Stdout, c.Stderr)
	if err != nil {
		return 0, err
	}
	code, err := l.run(ctx, domain, c, stdio)
	closeAll(stdio[:])
	if werr := wait(); err == nil && werr != nil {
		err = werr
	}
	if notStarted, ok := errors.AsType[errNotStarted](err); ok {
		if c.Stderr != nil {
			fmt.Fprintf(c.Stderr, "%s: %v\n", c.Args[0], notStarted)
		}
		err = nil
	}
	return code, err
}

// errNotStarted is the init's reason for not starting a command.
type errNotStarted struct{ reason string }

func (e errNotStarted) Error() string { return e.reason }

func (l *Lab) run(ctx context.Context, domain string, c Command, stdio [3]*os.File) (int, error) {
	conn, err := dialControl(l.Domain(domain))
	if err != nil {
		// Most often the whole lab is down: say how to bring it up.
		if s, serr := loadState(l.Dir); serr == nil && !s.running() {
			return 0, fmt.Errorf("the lab in %s is not running (pedos-lab up --dir %s)", l.Dir, l.Dir)
		}
		return 0, err
	}
	defer conn.Close()
	req := controlRequest{Op: opExec, Argv: c.Args, Env: domainEnv(domain, c.Env)}
	if err := sendControl(conn, req, stdio[:]...); err != nil {
		return 0, fmt.Errorf("domain %s: %w", domain, err)
	}
	var started controlReply
	if _, err := receiveControl(conn, &started); err != nil {
		return 0, fmt.Errorf("domain %s: %w", domain, err)
	}
	if started.Error != "" {
		return 127, errNotStarted{started.Error}
	}
	exited := make(chan controlReply, 1)
	failed := make(chan error, 1)
	go func() {
		var rep controlReply
		if _, err := receiveControl(conn, &rep); err != nil || rep.Exit == nil {
			failed <- fmt.Errorf("domain %s: lost the command (%v)", domain, err)
			return
		}
		exited <- rep
	}()
	for {
		select {
		case rep := <-exited:
			return *rep.Exit, nil
		case err := <-failed:
			return 0, err
		case sig := <-c.Signals:
			if s, ok := sig.(syscall.Signal); ok {
				_ = sendControl(conn, controlRequest{Op: opSignal, Signal: int(s)})
			}
		case <-ctx.Done():
			return 0, ctx.Err() // closing conn makes the init kill the command
		}
	}
}

// connectStdio turns the command's stdio into files to pass. Once the
// command has exited, wait ends the copying: it stops feeding stdin and
// waits for the output pipes to drain, at most a few seconds (a process the
// command left behind may hold them open).
func connectStdio(stdin io.Reader, stdout, stderr io.Writer) (files [3]*os.File, wait func() error, err error) {
	c := &stdioCopier{}
	for i, stream := range []any{stdin, stdout, stderr} {
		if files[i], err = c.connect(stream, i == 0); err != nil {
			closeAll(files[:])
			closeAll(c.ourEnds)
			return [3]*os.File{}, nil, err
		}
	}
	return files, c.wait, nil
}

// stdioCopier copies between a command's pipes and its caller's readers and
// writers that are no files.
type stdioCopier struct {
	outputs  sync.WaitGroup // the stdout and stderr copies
	mu       sync.Mutex
	copyErr  error      // the first output copy's error
	ourEnds  []*os.File // the pipe ends this side holds
	stdinEnd *os.File   // the one stdin is copied into
}

// connect returns the file the command gets for stream (its stdin if
// input): a dup of an *os.File, so that a terminal stays one and closing
// ours never closes the caller's; /dev/null for nil; else a pipe that a
// goroutine copies through.
func (c *stdioCopier) connect(stream any, input bool) (*os.File, error) {
	if f, ok := stream.(*os.File); ok && f != nil {
		fd, err := syscall.Dup(int(f.Fd()))
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), f.Name()), nil
	} else if ok || stream == nil {
		if input {
			return os.Open(os.DevNull)
		}
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	if input {
		c.stdinEnd = w
		c.ourEnds = append(c.ourEnds, w)
		go func() {
			_, _ = io.Copy(w, stream.(io.Reader)) // the command may stop reading early
			w.Close()
		}()
		return r, nil
	}
	c.ourEnds = append(c.ourEnds, r)
	c.outputs.Go(func() {
		_, err := io.Copy(stream.(io.Writer), r)
		c.mu.Lock()
		if c.copyErr == nil && !errors.Is(err, os.ErrClosed) {
			c.copyErr = err
		}
		c.mu.Unlock()
	})
	return w, nil
}

// wait stops feeding stdin, lets the outputs drain for up to 5 s, then
// closes this side's pipe ends and returns the first output copy's error.
func (c *stdioCopier) wait() error {
	if c.stdinEnd != nil {
		c.stdinEnd.Close()
	}
	drained := make(chan struct{})
	go func() { c.outputs.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
	}
	closeAll(c.ourEnds)
	c.outputs.Wait()
	return c.copyErr
}

// Exec runs args in the domain with stdin (nil: empty) and returns what it
// wrote and its exit status; see Run.
func (l *Lab) Exec(ctx context.Context, domain string, stdin io.Reader, args ...string) (stdout, stderr []byte, exit int, err error) {
	var out, errOut bytes.Buffer
	exit, err = l.Run(ctx, domain, Command{Args: args, Stdin: stdin, Stdout: &out, Stderr: &errOut})
	return out.Bytes(), errOut.Bytes(), exit, err
}

// mustRun runs args in the domain for the lab's own setup: anything but
// exit 0 is an error quoting the command's output.
func (l *Lab) mustRun(ctx context.Context, domain string, args ...string) error {
	out, errOut, code, err := l.Exec(ctx, domain, nil, args...)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	if err != nil {
		return fmt.Errorf("domain %s: %s: %w", domain, strings.Join(args, " "), err)
	}
	return nil
}
