package qrexec

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// services are the process groups of the services this process runs. A
// service has a process group of its own (C7), so a signal that ends the
// daemon or an agent would leave it running with no call, outside the
// service manager's view when the program was started by hand; the
// signal ends them too, as a caller's hang-up does.
var services struct {
	sync.Mutex
	groups   map[int]bool
	stopping bool // a signal came: a service started now is killed at once
}

// addService records the process group of a started service.
func addService(pgid int) {
	services.Lock()
	defer services.Unlock()
	if services.stopping {
		syscall.Kill(-pgid, syscall.SIGKILL)
		return
	}
	if services.groups == nil {
		services.groups = map[int]bool{}
	}
	services.groups[pgid] = true
}

// removeService forgets a service once it was waited for.
func removeService(pgid int) {
	services.Lock()
	defer services.Unlock()
	delete(services.groups, pgid)
}

// StopServicesOnSignal has SIGTERM, SIGINT and SIGHUP kill every running
// service's process group, then end this process by that signal, as they
// would have without it (systemd takes SIGTERM's end as a clean stop).
func StopServicesOnSignal() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		sig := <-signals
		services.Lock()
		services.stopping = true
		for pgid := range services.groups {
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
		services.Unlock()
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	}()
}
