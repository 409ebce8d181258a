package qrexec

import (
	"sync"
	"time"
)

// floodLog logs the first event of a kind per key (a domain, a vsock
// peer), then only counts that key's events and logs their number once per
// interval while they go on. One line per dropped connection would let a
// domain fill dom0's log and disk at the rate it can connect (C6).
type floodLog struct {
	interval time.Duration // 0 means floodLogInterval

	mu      sync.Mutex
	pending map[string]int // events not yet logged, per key whose interval runs
}

const floodLogInterval = 10 * time.Second

// event logs an event for key with log(1), or counts it if key's interval
// runs; log(n) then reports the n events counted at the interval's end.
func (f *floodLog) event(key string, log func(count int)) {
	f.mu.Lock()
	if f.pending == nil {
		f.pending = map[string]int{}
	}
	_, running := f.pending[key]
	if running {
		f.pending[key]++
	} else {
		f.pending[key] = 0
	}
	f.mu.Unlock()
	if !running {
		log(1)
		f.schedule(key, log)
	}
}

func (f *floodLog) schedule(key string, log func(count int)) {
	interval := f.interval
	if interval == 0 {
		interval = floodLogInterval
	}
	time.AfterFunc(interval, func() { f.report(key, log) })
}

// report logs the events counted for key during the interval that ended;
// with none, the key's next event is logged at once.
func (f *floodLog) report(key string, log func(count int)) {
	f.mu.Lock()
	n := f.pending[key]
	if n == 0 {
		delete(f.pending, key)
	} else {
		f.pending[key] = 0
	}
	f.mu.Unlock()
	if n > 0 {
		log(n)
		f.schedule(key, log)
	}
}
