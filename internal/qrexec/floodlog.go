package qrexec

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// floodLog logs the first events of a kind per key (a domain, a vsock
// peer) one by one, up to a burst per interval, then only counts that
// key's events and logs their number once per interval while they go on.
// One line per dropped connection or refused request would let a domain
// fill dom0's log and disk at the rate it can connect (C6).
type floodLog struct {
	interval time.Duration // 0 means floodLogInterval

	mu   sync.Mutex
	keys map[string]*floodCount // per key whose interval runs
}

type floodCount struct {
	logged  int // events logged one by one in this interval
	counted int // events only counted, not yet reported
}

const floodLogInterval = 10 * time.Second

// event logs an event of key with each, if fewer than burst (at least 1)
// were logged in key's interval; otherwise it only counts it, and
// summary(n) reports the n counted events when the interval ends.
func (f *floodLog) event(key string, burst int, each func(), summary func(n int)) {
	f.mu.Lock()
	if f.keys == nil {
		f.keys = map[string]*floodCount{}
	}
	c, running := f.keys[key]
	if !running {
		c = &floodCount{}
		f.keys[key] = c
	}
	logNow := c.logged < max(burst, 1)
	if logNow {
		c.logged++
	} else {
		c.counted++
	}
	f.mu.Unlock()
	if logNow {
		each()
	}
	if !running {
		f.schedule(key, burst, summary)
	}
}

// count is event with a burst of 1 and one message for both: log(1) for
// the first event of an interval, log(n) for the n counted after it.
func (f *floodLog) count(key string, log func(n int)) {
	f.event(key, 1, func() { log(1) }, log)
}

func (f *floodLog) schedule(key string, burst int, summary func(n int)) {
	interval := f.interval
	if interval == 0 {
		interval = floodLogInterval
	}
	time.AfterFunc(interval, func() { f.report(key, burst, summary) })
}

// report logs the events counted for key during the interval that ended.
// With none, the key's next events are logged one by one again; with some,
// the flood is taken to go on, and the next interval only counts.
func (f *floodLog) report(key string, burst int, summary func(n int)) {
	f.mu.Lock()
	c := f.keys[key]
	n := c.counted
	if n == 0 {
		delete(f.keys, key)
	} else {
		c.logged, c.counted = max(burst, 1), 0
	}
	f.mu.Unlock()
	if n > 0 {
		summary(n)
		f.schedule(key, burst, summary)
	}
}

// floodLogger is log with its lines under f's flood control for key: up
// to burst lines per interval are logged unchanged, the others counted,
// and their number is logged with summary by log as it is here, before any
// attribute of one call is added: the count is of every call of key.
func floodLogger(log *slog.Logger, f *floodLog, key string, burst int, summary string) *slog.Logger {
	return slog.New(&floodHandler{
		Handler: log.Handler(), flood: f, key: key, burst: burst,
		summary: func(n int) { log.Warn(summary, "count", n) },
	})
}

// floodHandler passes records on to its Handler within its flood control.
type floodHandler struct {
	slog.Handler
	flood   *floodLog
	key     string
	burst   int
	summary func(n int)
}

func (h *floodHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	h.flood.event(h.key, h.burst, func() { err = h.Handler.Handle(ctx, r) }, h.summary)
	return err
}

func (h *floodHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithAttrs(attrs)
	return &c
}

func (h *floodHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithGroup(name)
	return &c
}
