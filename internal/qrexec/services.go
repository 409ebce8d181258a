package qrexec

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
)

// services are the services this process runs. A service has a process
// group of its own (C7), so a signal that ends the daemon or an agent would
// leave it running with no call, outside the service manager's view when
// the program was started by hand; the signal ends them too, as a caller's
// hang-up does.
var services struct {
	sync.Mutex
	running  map[*exec.Cmd]bool
	stopping bool // a signal came: no service starts any more
}

// startService starts a service's process (StartPiped) and records it,
// under the lock the signal's handler takes, so that no service starts
// unseen while the handler kills them.
func startService(cmd *exec.Cmd, pipeErrs ...error) error {
	services.Lock()
	defer services.Unlock()
	if services.stopping {
		return errors.New("this process is stopping on a signal")
	}
	if err := StartPiped(cmd, pipeErrs...); err != nil {
		return err
	}
	if services.running == nil {
		services.running = map[*exec.Cmd]bool{}
	}
	services.running[cmd] = true
	return nil
}

// serviceEnded forgets a service once it was waited for.
func serviceEnded(cmd *exec.Cmd) {
	services.Lock()
	defer services.Unlock()
	delete(services.running, cmd)
}

// StopServicesOnSignal has SIGTERM, SIGINT and SIGHUP kill every running
// service's process group, then end this process by that signal, as they
// would have without it (systemd takes SIGTERM's end as a clean stop). A
// signal this process was started ignoring (nohup's SIGHUP, a background
// job's SIGINT) stays ignored.
func StopServicesOnSignal() {
	var handled []os.Signal
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		if !signal.Ignored(sig) {
			handled = append(handled, sig)
		}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, handled...)
	go func() {
		sig := (<-signals).(syscall.Signal)
		services.Lock()
		services.stopping = true
		for cmd := range services.running {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		services.Unlock()
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig)
		os.Exit(128 + int(sig)) // only if the signal did not end the process
	}()
}
