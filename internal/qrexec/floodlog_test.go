package qrexec

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"pedos.dev/updates/internal/testbin"
)

// The flood log's tests run in a synctest bubble, where its interval is
// measured on the bubble's clock, which moves only while every goroutine
// of the test waits: the interval cannot end in the middle of a burst
// however slowly a loaded machine runs it (with a real 100 ms it could,
// and the burst's count came in two parts).

// TestFloodLogCounts: a burst is one line, then its count at the interval's
// end; a key is counted apart from the others; after a quiet interval the
// next event is logged at once again.
func TestFloodLogCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &floodLog{interval: 100 * time.Millisecond}
		var mu sync.Mutex
		logged := map[string][]int{}
		logAs := func(key string) func(int) {
			return func(n int) {
				mu.Lock()
				defer mu.Unlock()
				logged[key] = append(logged[key], n)
			}
		}
		event := func(key string) { f.count(key, logAs(key)) }
		for range 1000 {
			event("vm1")
		}
		event("vm2")
		waitUntil(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Equal(logged["vm1"], []int{1, 999})
		})
		waitUntil(t, func() bool { // the quiet interval after the count
			f.mu.Lock()
			defer f.mu.Unlock()
			return len(f.keys) == 0
		})
		event("vm1")
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(logged["vm1"], []int{1, 999, 1}) || !slices.Equal(logged["vm2"], []int{1}) {
			t.Errorf("logged %v", logged)
		}
	})
}

func waitUntil(t *testing.T, done func() bool) {
	t.Helper()
	for range 500 {
		if done() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("not after 5s")
}

// With a burst, the first events of an interval are each logged, the rest
// counted and reported once.
func TestFloodLogBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &floodLog{interval: 100 * time.Millisecond}
		var mu sync.Mutex
		var each, summaries []int
		for i := range 10 {
			f.event("vm1", nil, 3, func() {
				mu.Lock()
				defer mu.Unlock()
				each = append(each, i)
			}, func(n int, _ string) {
				mu.Lock()
				defer mu.Unlock()
				summaries = append(summaries, n)
			})
		}
		waitUntil(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(summaries) > 0
		})
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(each, []int{0, 1, 2}) || !slices.Equal(summaries, []int{7}) {
			t.Errorf("logged %v one by one and %v counted; want [0 1 2] and [7]", each, summaries)
		}
	})
}

// TestFloodLoggerSummary: a flood logger passes the first lines on as they
// are, with each call's attributes; the count of the others is the
// domain's, and names the calls they belong to, each once however many of
// its lines were counted, the most frequent first, at most eight names
// (C6: a flood must not hide which calls were made).
func TestFloodLoggerSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &floodLog{interval: 100 * time.Millisecond}
		var out testbin.Buffer
		domainLog := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: withoutTime})).With("domain", "vm1")
		call := func(name string, lines int) {
			logger := floodLogger(domainLog, f, "vm1", 2, "more lines, counted only", name).With("service", name)
			for range lines {
				logger.Info("a line")
			}
		}
		for range 4 {
			call("test.A", 2) // the first call's two lines are logged
		}
		call("test.B", 1)
		for i := range 9 {
			call(fmt.Sprint("test.C", i), 1)
		}
		waitUntil(t, func() bool { return strings.Contains(out.String(), "counted only") })
		want := `level=INFO msg="a line" domain=vm1 service=test.A
level=INFO msg="a line" domain=vm1 service=test.A
level=WARN msg="more lines, counted only" domain=vm1 count=16 calls="test.A: 3, test.B: 1, test.C0: 1, test.C1: 1, test.C2: 1, test.C3: 1, test.C4: 1, test.C5: 1, others: 3"
`
		if got := out.String(); got != want {
			t.Errorf("logged:\n%s\nwant:\n%s", got, want)
		}
		// Lines of no one call are counted only.
		out.Reset()
		refusals := floodLogger(domainLog, f, "vm2", 1, "more refusals, counted only", "")
		for range 3 {
			refusals.Info("refused")
		}
		waitUntil(t, func() bool { return strings.Contains(out.String(), "counted only") })
		want = `level=INFO msg=refused domain=vm1
level=WARN msg="more refusals, counted only" domain=vm1 count=2
`
		if got := out.String(); got != want {
			t.Errorf("logged:\n%s\nwant:\n%s", got, want)
		}
	})
}

func withoutTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

// A call flooded after decoys (more names than a tally keeps) is still
// named first, with its number; a call whose lines are counted in two
// intervals is named in each (C6).
func TestFloodLoggerSummaryDecoys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &floodLog{interval: 100 * time.Millisecond}
		var out testbin.Buffer
		domainLog := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: withoutTime}))
		call := func(name string) *slog.Logger {
			return floodLogger(domainLog, f, "vm1", 1, "counted only", name)
		}
		call("first").Info("logged")
		for i := range maxTrackedCalls + 8 {
			call(fmt.Sprint("decoy", i)).Info("a line")
		}
		for range 5000 {
			call("PedOS.ReceiveUpdates to dom0").Info("a line")
		}
		long := call("long")
		long.Info("a line")
		waitUntil(t, func() bool { return strings.Count(out.String(), "counted only") == 1 })
		long.Info("a line in the next interval")
		waitUntil(t, func() bool { return strings.Count(out.String(), "counted only") == 2 })
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 ||
			!strings.HasPrefix(lines[1], `level=WARN msg="counted only" count=5041 calls="PedOS.ReceiveUpdates to dom0: 5000, `) ||
			!strings.HasSuffix(lines[1], `, others: 34"`) ||
			lines[2] != `level=WARN msg="counted only" count=1 calls="long: 1"` {
			t.Errorf("logged:\n%s", out.String())
		}
	})
}

// A flood of calls with ever new names keeps at most maxTrackedCalls of
// them in its tally, however many it counts (C6: the memory is bounded).
func TestFloodTallyIsBounded(t *testing.T) {
	var c floodCount
	for i := range 10 * maxTrackedCalls {
		c.tally(&floodCall{name: fmt.Sprint("decoy.", i, " to dom0")})
	}
	if len(c.calls) != maxTrackedCalls || c.tallied != 10*maxTrackedCalls {
		t.Errorf("%d names kept for %d calls tallied, want %d for %d", len(c.calls), c.tallied, maxTrackedCalls, 10*maxTrackedCalls)
	}
}
