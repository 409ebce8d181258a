package qrexec

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	// calls counts, by name, the calls with events only counted in this
	// interval, so that a flood's summary says which calls it hid (C6);
	// tallied is how many calls that is in all.
	calls   []talliedCall
	tallied int
}

// talliedCall is a name's count in a space-saving tally: a name that
// takes the place of the least counted one when every place is taken
// starts from that count, and overcount says by how much it may be over.
// Every name counted more often than 1/maxTrackedCalls of the calls has a
// place, so calls flooded after any number of decoy names still come first.
type talliedCall struct {
	name             string
	count, overcount int
}

// maxTrackedCalls bounds the names a tally keeps per key and interval, and
// maxNamedCalls those a summary names: a flood of calls to ever new
// services must make neither the memory nor the summary line grow.
const (
	maxTrackedCalls = 32
	maxNamedCalls   = 8
)

// floodCall is one call's share of its key's flood: its name in a
// summary, and the interval it was last tallied in (a call is tallied
// once per interval its events are counted in). The loggers of one call
// share it; the floodLog's mutex guards tallied.
type floodCall struct {
	name    string
	tallied *floodCount
}

const floodLogInterval = 10 * time.Second

// event logs an event of key with each, if fewer than burst (at least 1)
// were logged in key's interval; otherwise it only counts it, and
// summary(n, calls) reports the n counted events when the interval ends,
// with the tally of the calls they belong to (call, when not nil, is the
// event's).
func (f *floodLog) event(key string, call *floodCall, burst int, each func(), summary func(n int, calls string)) {
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
		c.tally(call)
	}
	f.mu.Unlock()
	if logNow {
		each()
	}
	if !running {
		f.schedule(key, burst, summary)
	}
}

// tally counts call, once, among the calls with events only counted.
func (c *floodCount) tally(call *floodCall) {
	if call == nil || call.tallied == c {
		return
	}
	call.tallied = c
	c.tallied++
	for i := range c.calls {
		if c.calls[i].name == call.name {
			c.calls[i].count++
			return
		}
	}
	if len(c.calls) < maxTrackedCalls {
		c.calls = append(c.calls, talliedCall{name: call.name, count: 1})
		return
	}
	least := 0
	for i := range c.calls {
		if c.calls[i].count < c.calls[least].count {
			least = i
		}
	}
	c.calls[least] = talliedCall{name: call.name, count: c.calls[least].count + 1, overcount: c.calls[least].count}
}

// talliedCalls says the tallied calls, the most counted first, at most
// maxNamedCalls of them, each with the number it surely had, then the
// others, e.g. "PedOS.ReceiveUpdates to dom0: 5998, test.Echo to dom0: 2,
// others: 3"; "" for none.
func (c *floodCount) talliedCalls() string {
	surely := func(t talliedCall) int { return t.count - t.overcount }
	calls := slices.Clone(c.calls)
	slices.SortFunc(calls, func(a, b talliedCall) int {
		return cmp.Or(cmp.Compare(surely(b), surely(a)), strings.Compare(a.name, b.name))
	})
	var named []string
	others := c.tallied
	for _, t := range calls[:min(len(calls), maxNamedCalls)] {
		named = append(named, fmt.Sprintf("%s: %d", t.name, surely(t)))
		others -= surely(t)
	}
	if others > 0 {
		named = append(named, fmt.Sprintf("others: %d", others))
	}
	return strings.Join(named, ", ")
}

// count is event with a burst of 1 and one message for both: log(1) for
// the first event of an interval, log(n) for the n counted after it.
func (f *floodLog) count(key string, log func(n int)) {
	f.event(key, nil, 1, func() { log(1) }, func(n int, _ string) { log(n) })
}

func (f *floodLog) schedule(key string, burst int, summary func(n int, calls string)) {
	interval := f.interval
	if interval == 0 {
		interval = floodLogInterval
	}
	time.AfterFunc(interval, func() { f.report(key, burst, summary) })
}

// report logs the events counted for key during the interval that ended.
// With none, the key's next events are logged one by one again; with some,
// the flood is taken to go on, and the next interval only counts.
func (f *floodLog) report(key string, burst int, summary func(n int, calls string)) {
	f.mu.Lock()
	c := f.keys[key]
	n, calls := c.counted, c.talliedCalls()
	if n == 0 {
		delete(f.keys, key)
	} else {
		f.keys[key] = &floodCount{logged: max(burst, 1)}
	}
	f.mu.Unlock()
	if n > 0 {
		summary(n, calls)
		f.schedule(key, burst, summary)
	}
}

// floodLogger is log with its lines under f's flood control for key: up
// to burst lines per interval are logged unchanged, the others counted,
// and their number is logged with summary by log as it is here, before any
// attribute of one call is added: the count is of every call of key. The
// lines are those of the call named call, if not "": the summary then
// names, by call, the calls it counted lines of (C6: a flood must not
// hide which calls were made).
func floodLogger(log *slog.Logger, f *floodLog, key string, burst int, summary, call string) *slog.Logger {
	h := &floodHandler{
		Handler: log.Handler(), flood: f, key: key, burst: burst,
		summary: func(n int, calls string) {
			if calls == "" {
				log.Warn(summary, "count", n)
			} else {
				log.Warn(summary, "count", n, "calls", calls)
			}
		},
	}
	if call != "" {
		h.call = &floodCall{name: call}
	}
	return slog.New(h)
}

// floodHandler passes records on to its Handler within its flood control.
type floodHandler struct {
	slog.Handler
	flood   *floodLog
	key     string
	call    *floodCall // nil for lines of no one call
	burst   int
	summary func(n int, calls string)
}

func (h *floodHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	h.flood.event(h.key, h.call, h.burst, func() { err = h.Handler.Handle(ctx, r) }, h.summary)
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
