package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"pedos.dev/updates/internal/atomicfile"
	"pedos.dev/updates/internal/dom0"
)

// ErrNoResult means no delivery finished for the session: the UpdateVM
// never called, or the service died before it could answer.
var ErrNoResult = errors.New("no delivery arrived for this update session")

// maxResultBytes bounds what is read of the state files the receive service
// writes (result, progress, the claimed session): a result lists each
// package of a delivery.
const maxResultBytes = 64 << 20

// ReadResult returns the result of the given session.
func ReadResult(c dom0.Config, session string) (dom0.Result, error) {
	var r dom0.Result
	b, err := atomicfile.ReadRegular(filepath.Join(c.Path(dom0.StateDir), dom0.ResultFile), maxResultBytes)
	if errors.Is(err, os.ErrNotExist) {
		return r, ErrNoResult
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("reading the receive result: %w", err)
	}
	if r.Session != session {
		// Another session's: nothing of it is this run's (not even its
		// count for the progress).
		return dom0.Result{}, ErrNoResult
	}
	return r, nil
}

// serviceGoneAfter is how long the receive lock (dom0.ReceiveLockFile) must
// stay free, with no result, before the front end concludes that the
// service that claimed the session died (F1). The service holds the lock
// from before the claim until after the result, so a free lock with no
// result already means that; the grace only absorbs a probe's timing.
var serviceGoneAfter = 2 * time.Second

// AwaitResult returns the result of session s once the UpdateVM's command
// has ended (overview.md step 7). If no delivery claimed the session, it
// withdraws it, so that none can claim it later (C2), and returns
// ErrNoResult. If one did, dom0 may still be verifying it although the
// UpdateVM's command is gone: it waits for the result while the receive
// service runs, until the session's deadline.
func AwaitResult(ctx context.Context, c dom0.Config, s dom0.Session) (dom0.Result, error) {
	res, err := ReadResult(c, s.ID)
	if !errors.Is(err, ErrNoResult) || CancelSession(c) || !claimed(c, s.ID) {
		return res, err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var idleSince time.Time
	for {
		select {
		case <-ctx.Done():
			// The run's only cancellation is a signal (Ctrl-C, SIGTERM,
			// SIGHUP): the user's, not a failure of dom0's.
			return res, fmt.Errorf("%w: stopped waiting for dom0's verdict on the delivery from %s", ErrInterrupted, c.UpdateVM)
		case <-tick.C:
		}
		res, err := ReadResult(c, s.ID)
		if !errors.Is(err, ErrNoResult) {
			return res, err
		}
		now := time.Now()
		if receiveRunning(c) {
			idleSince = time.Time{}
		} else if idleSince.IsZero() {
			idleSince = now
		}
		switch {
		case !idleSince.IsZero() && now.Sub(idleSince) >= serviceGoneAfter:
			state := c.Path(dom0.StateDir)
			if free, err := dom0.FreeBytes(state); err == nil && free < dom0.MinFreeBytes {
				// The service could not write its result: its
				// delivery may well have been published.
				return res, fmt.Errorf("dom0 took the delivery from %s, but its receive service ended without a result: the file system of %s has %d bytes free, a full disk is the likely cause (the delivery may have been published; the qrexec daemon's journal says): free space there and run again", c.UpdateVM, state, free)
			}
			return res, fmt.Errorf("dom0 took the delivery from %s, but its receive service ended without a result (it failed, or was killed, as it is when %s hangs up the call mid-delivery: see the qrexec daemon's journal)", c.UpdateVM, c.UpdateVM)
		case now.After(s.Deadline.Add(serviceGoneAfter)):
			return res, fmt.Errorf("dom0 took the delivery from %s, but wrote no result by the session's deadline (%s): see the qrexec daemon's journal", c.UpdateVM, s.Deadline.Format(time.RFC3339))
		}
	}
}

// claimed says whether a delivery claimed session id (dom0.ClaimSession).
func claimed(c dom0.Config, id string) bool {
	var s dom0.Session
	b, err := atomicfile.ReadRegular(filepath.Join(c.Path(dom0.StateDir), dom0.ClaimedFile), maxResultBytes)
	return err == nil && json.Unmarshal(b, &s) == nil && s.ID == id
}

// receiveRunning says whether a receive service holds its lock. The probe
// takes the lock for an instant: a service starting in that instant refuses
// its delivery ("another delivery is being processed"), which can only
// happen after the UpdateVM's command ended without waiting for dom0's
// answer. A lock that cannot be probed counts as held: the front end then
// waits until the deadline.
func receiveRunning(c dom0.Config) bool {
	unlock, err := dom0.LockFile(filepath.Join(c.Path(dom0.StateDir), dom0.ReceiveLockFile))
	if err != nil {
		return true // held (EWOULDBLOCK), or it cannot be probed
	}
	unlock()
	return false
}
