package dom0

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/atomicfile"
	"pedos.dev/updates/internal/repometa"
)

// Session binds a delivery to an update that dom0 started (C2): the front
// end writes one before it asks the UpdateVM to download, and the receive
// service accepts a call only with its id, once, before its deadline.
type Session struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Deadline time.Time `json:"deadline"`
	// Options the receive service needs to judge the delivery.
	Action         string                 `json:"action"`
	Packages       []string               `json:"packages,omitempty"`
	Excludes       []string               `json:"excludes,omitempty"`
	Repos          *repometa.NetworkRepos `json:"repos"`
	AllowDowngrade bool                   `json:"allow_downgrade,omitempty"`
}

// State directory files, below the root. The front end writes the live
// session (internal/frontend); the receive service claims it and writes the
// result and the progress.
const (
	StateDir        = "/var/lib/PedOS/state"
	SessionFile     = "session.json"
	ClaimedFile     = "session.claimed.json"
	ResultFile      = "result.json"
	SessionIDLength = 32 // hex digits: 128 bits
)

// MaxSessionBytes bounds a session file: an id, times, the package names
// asked for (NewSession refuses a larger one before anything is sent).
const MaxSessionBytes = 1 << 20

// ErrNoSession means a delivery arrived that no update of dom0's asked for.
var ErrNoSession = errors.New("no update session is waiting for a delivery")

// ClaimSession checks untrustedID against the live session and, if it
// matches and has not expired, claims it so that no second delivery can use
// it. It reads nothing from the caller but the id. The caller holds the
// receive lock (Serve): two claims probing the session's lock at once would
// each see the other's probe as a live run.
func ClaimSession(c Config, untrustedID string, now time.Time) (Session, error) {
	dir := c.Path(StateDir)
	live := filepath.Join(dir, SessionFile)
	f, err := atomicfile.OpenRegular(live, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, err
	}
	defer f.Close()
	s, err := decodeSession(atomicfile.ReadBounded(f, MaxSessionBytes))
	if err != nil {
		return s, fmt.Errorf("reading %s: %w", live, err)
	}
	// The id is the UpdateVM's proof that dom0 asked for this delivery (C2); compared in
	// constant time, so that the time a refusal takes tells nothing of the right id.
	if len(untrustedID) != SessionIDLength ||
		subtle.ConstantTimeCompare([]byte(untrustedID), []byte(s.ID)) != 1 {
		return s, errors.New("the session id does not match the live session")
	}
	// A late delivery is one dom0 no longer waits for (C2; receive_timeout).
	if now.After(s.Deadline) {
		return s, fmt.Errorf("the session expired at %s", s.Deadline.Format(time.RFC3339))
	}
	// A session is live only while the pedos-dom0-update that wrote it
	// runs: it holds a shared lock on this very file until it ends, which
	// the kernel drops when it is killed outright (SIGKILL, a crash). The
	// session it leaves behind must not let the UpdateVM publish what no
	// one in dom0 is waiting for (C2), later or during the next run, whose
	// session is another file. (The exclusive probe goes with f.)
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		return s, errors.New("the pedos-dom0-update that started the session is no longer running")
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		return s, fmt.Errorf("checking %s: %w", live, err)
	}
	// rename is atomic: of two concurrent deliveries only one can claim.
	claimed := filepath.Join(dir, ClaimedFile)
	if err := os.Rename(live, claimed); errors.Is(err, os.ErrNotExist) {
		return s, ErrNoSession // the other delivery claimed it first
	} else if err != nil { // a directory left at the claimed file's name, say
		return s, fmt.Errorf("claiming the session: %w", err)
	}
	again, err := decodeSession(atomicfile.ReadRegular(claimed, MaxSessionBytes))
	if err != nil || again.ID != s.ID {
		return s, ErrNoSession
	}
	return s, nil
}

func decodeSession(b []byte, err error) (Session, error) {
	var s Session
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, err
	}
	// Without the list the freshness checks would expect no repository
	// (M1, M2): a session written by an older front end is refused.
	if s.Repos == nil {
		return s, errors.New("the session lists no repositories (written by an older pedos-dom0-update?): run the update again")
	}
	return s, nil
}
