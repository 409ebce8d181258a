package qrexec

import (
	"testing"
	"time"
)

// Every wait of this package's tests (a connection read, a process's exit,
// a goroutine's result) ends at a deadline of its own, so that a regression
// that leaves a call hanging (a hang-up not noticed, a timeout not applied)
// fails the test that waited, saying what did not happen, instead of
// reaching go test's -timeout, which ends the whole package with a
// goroutine dump. These are exported for the qrexec_test package's tests.

// WaitLimit is how long a test waits for one thing. Generous: the slowest
// wait, the conformance suite's 1 GiB call, takes 3–6 s on a 2-core CI
// machine. A machine that moves less than about 17 MiB/s through a call (an
// emulated one: a TCG guest took 3–5 minutes) fails those six cases alone.
const WaitLimit = 60 * time.Second

// reportMargin is left before go test's own -timeout, for a test to fail
// with its message and stop its processes.
const reportMargin = 10 * time.Second

// WaitDeadline is when a wait of t that starts now gives up: WaitLimit from
// now, or earlier if go test's -timeout would come first.
func WaitDeadline(t testing.TB) time.Time {
	deadline := time.Now().Add(WaitLimit)
	if tt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := tt.Deadline(); ok && end.Add(-reportMargin).Before(deadline) {
			deadline = end.Add(-reportMargin)
		}
	}
	return deadline
}

// Await returns what ch gives, or fails t at WaitDeadline, naming what it
// waited for: "the relayed call's refusal", as the message's subject.
func Await[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	wait := time.Until(WaitDeadline(t))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
	}
	t.Fatalf("gave up waiting for %s after %v", what, wait.Round(time.Second))
	var none T // Fatalf has ended the test: never returned
	return none
}
