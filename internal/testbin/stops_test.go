package testbin

import "testing"

// Once the binary is ending (abort: the watchdog, or SIGINT or SIGTERM), a
// stop forgotten by its test's cleanup is not run (its processes are gone,
// and their ids may be others' by then), and a process registered after it
// is stopped at once: nothing started then may stay.
func TestAbortRunsOnlyTheStopsNotForgotten(t *testing.T) {
	t.Cleanup(func() { // as before the abort, for the tests after this one
		aborts.Lock()
		aborts.aborted = false
		aborts.Unlock()
	})
	forgottenRan, keptRan := false, false
	StopOnAbort(func() { forgottenRan = true })()
	StopOnAbort(func() { keptRan = true })
	abort()
	if forgottenRan || !keptRan {
		t.Errorf("abort ran the forgotten stop: %v, the registered one: %v; want only the registered one", forgottenRan, keptRan)
	}
	late := false
	StopOnAbort(func() { late = true })
	if !late {
		t.Error("a stop registered after the abort was not run at once")
	}
}
