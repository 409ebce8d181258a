package dom0

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Session binds a delivery to an update that dom0 started (C2): the front
// end writes one before it asks the UpdateVM to download, and the receive
// service accepts a call only with its id, once, before its deadline.
type Session struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Deadline time.Time `json:"deadline"`
	// Options the receive service needs to judge the delivery.
	Action         string       `json:"action"`
	Packages       []string     `json:"packages,omitempty"`
	Excludes       []string     `json:"excludes,omitempty"`
	RepoSwitches   []RepoSwitch `json:"repo_switches,omitempty"`
	AllowDowngrade bool         `json:"allow_downgrade,omitempty"`
}

// RepoSwitch is one --enablerepo (Enable) or --disablerepo glob. dnf applies them in the
// order of its command line, so they are kept in that order: `--disablerepo='*'
// --enablerepo=R` leaves R enabled, and the freshness checks must see the same.
type RepoSwitch struct {
	Enable bool   `json:"enable"`
	Glob   string `json:"glob"`
}

// Option is the switch as a dnf option.
func (r RepoSwitch) Option() string {
	if r.Enable {
		return "--enablerepo=" + r.Glob
	}
	return "--disablerepo=" + r.Glob
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

// ErrNoSession means a delivery arrived that no update of dom0's asked for.
var ErrNoSession = errors.New("no update session is waiting for a delivery")

// ClaimSession checks untrustedID against the live session and, if it
// matches and has not expired, claims it so that no second delivery can use
// it. It reads nothing from the caller but the id.
func ClaimSession(c Config, untrustedID string, now time.Time) (Session, error) {
	dir := c.Path(StateDir)
	live := filepath.Join(dir, SessionFile)
	s, err := readSession(live)
	if errors.Is(err, os.ErrNotExist) {
		return s, ErrNoSession
	}
	if err != nil {
		return s, fmt.Errorf("reading %s: %w", live, err)
	}
	if len(untrustedID) != SessionIDLength ||
		subtle.ConstantTimeCompare([]byte(untrustedID), []byte(s.ID)) != 1 {
		return s, errors.New("the session id does not match the live session")
	}
	if now.After(s.Deadline) {
		return s, fmt.Errorf("the session expired at %s", s.Deadline.Format(time.RFC3339))
	}
	// rename is atomic: of two concurrent deliveries only one can claim.
	claimed := filepath.Join(dir, ClaimedFile)
	if err := os.Rename(live, claimed); err != nil {
		return s, ErrNoSession
	}
	again, err := readSession(claimed)
	if err != nil || again.ID != s.ID {
		return s, ErrNoSession
	}
	return s, nil
}

func readSession(path string) (Session, error) {
	var s Session
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}
