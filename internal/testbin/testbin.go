// Package testbin gives tests the project's real binaries: those built by
// `make build` (PEDOS_BIN names their directory), or, when a test runs on
// its own, a fresh build of the command into a directory shared by the test
// process, which Main removes when the package's tests are done.
package testbin

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
	dir   string
)

// Path returns the path of the named command of cmd/, building it if needed.
func Path(t testing.TB, name string) string {
	t.Helper()
	if d := os.Getenv("PEDOS_BIN"); d != "" {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "pedos-testbin-")
		if err != nil {
			t.Fatalf("testbin: %v", err)
		}
		dir = d
	}
	p := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", p, "./cmd/"+name)
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testbin: building %s: %v\n%s", name, err, out)
	}
	built[name] = p
	return p
}

// Main runs a package's tests and then removes what Path built for them;
// a package that uses Path calls it from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }
func Main(m *testing.M) int {
	flag.Parse() // as m.Run would: -test.timeout is read below
	if timeout := flag.Lookup("test.timeout"); timeout != nil {
		if d, _ := timeout.Value.(flag.Getter).Get().(time.Duration); d > 0 {
			// Go's own alarm panics at d and runs no cleanup: this one
			// comes a little before, stops the processes, and panics as
			// Go's would, with every goroutine's stack.
			early := min(d/10, 30*time.Second)
			watchdog := time.AfterFunc(d-early, func() {
				abort()
				debug.SetTraceback("all")
				panic(fmt.Sprintf("test timed out: %v before -test.timeout %v, after stopping the processes the tests started", early, d))
			})
			defer watchdog.Stop()
		}
	}
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir, built = "", map[string]string{}
	}
	return code
}

// Run runs cmd (prepared by the caller: arguments, environment, stdin; an
// unset stdin is empty) and returns what it wrote on stdout and stderr and its
// exit status; a command that could not run at all fails the test.
func Run(t testing.TB, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	if cmd.Stdin == nil {
		cmd.Stdin = strings.NewReader("")
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, exited := errors.AsType[*exec.ExitError](err); err != nil && !exited {
		t.Fatalf("running %s: %v", cmd.Path, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// StopAtEnd puts cmd in a process group of its own and, when the test ends with cmd started
// and not waited for (the test failed first), kills that group by its id and waits: what cmd
// started goes with it.
func StopAtEnd(t testing.TB, cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stop := func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	forget := StopOnAbort(stop)
	t.Cleanup(func() {
		stop()
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = cmd.Wait()
		}
		forget()
	})
}

// aborts holds the stops StopOnAbort registered and not yet forgotten.
var aborts struct {
	sync.Mutex
	stops   map[int]func()
	next    int
	aborted bool
}

// StopOnAbort registers stop, which stops processes a test started (by their
// ids), to run should the test binary end before the test's own cleanup can:
// Go runs no t.Cleanup when -test.timeout fires (Main stops them a little
// before) or on SIGINT or SIGTERM. The test calls forget once its cleanup
// has stopped them.
func StopOnAbort(stop func()) (forget func()) {
	aborts.Lock()
	defer aborts.Unlock()
	if aborts.aborted { // the binary is ending: nothing started now may stay
		stop()
		return func() {}
	}
	if aborts.stops == nil {
		aborts.stops = map[int]func(){}
		stopOnSignals()
	}
	id := aborts.next
	aborts.next++
	aborts.stops[id] = stop
	return func() {
		aborts.Lock()
		defer aborts.Unlock()
		delete(aborts.stops, id)
	}
}

// abort runs every registered stop.
func abort() {
	aborts.Lock()
	defer aborts.Unlock()
	aborts.aborted = true
	for id, stop := range aborts.stops {
		stop()
		delete(aborts.stops, id)
	}
}

// stopOnSignals runs the stops on SIGINT or SIGTERM, then ends the binary by
// that signal as it would have ended; a signal it was started ignoring stays
// ignored.
func stopOnSignals() {
	signals := make(chan os.Signal, 1)
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		if !signal.Ignored(sig) {
			signal.Notify(signals, sig)
		}
	}
	go func() {
		sig := (<-signals).(syscall.Signal)
		abort()
		signal.Reset(sig)
		_ = syscall.Kill(os.Getpid(), sig)
	}()
}

// moduleRoot is the directory of go.mod, found from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
