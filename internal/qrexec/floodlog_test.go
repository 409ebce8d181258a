package qrexec

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// TestFloodLogCounts: a burst is one line, then its count at the interval's
// end; a key is counted apart from the others; after a quiet interval the
// next event is logged at once again.
func TestFloodLogCounts(t *testing.T) {
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
	for range 1000 {
		f.event("vm1", logAs("vm1"))
	}
	f.event("vm2", logAs("vm2"))
	waitUntil(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(logged["vm1"], []int{1, 999})
	})
	waitUntil(t, func() bool { // the quiet interval after the count
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.pending) == 0
	})
	f.event("vm1", logAs("vm1"))
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(logged["vm1"], []int{1, 999, 1}) || !slices.Equal(logged["vm2"], []int{1}) {
		t.Errorf("logged %v", logged)
	}
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
