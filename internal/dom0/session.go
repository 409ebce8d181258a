package dom0

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"pedos.dev/updates/internal/atomicfile"
)

// Session binds a delivery to an update that dom0 started (C2): the front
// end writes one before it asks the UpdateVM to download, and the receive
// service accepts a call only with its id, once, before its deadline.
type Session struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Deadline time.Time `json:"deadline"`
	// Options the receive service needs to judge the delivery.
	Action         string   `json:"action"`
	Packages       []string `json:"packages,omitempty"`
	Excludes       []string `json:"excludes,omitempty"`
	EnableRepos    []string `json:"enable_repos,omitempty"`
	DisableRepos   []string `json:"disable_repos,omitempty"`
	AllowDowngrade bool     `json:"allow_downgrade,omitempty"`
}

// State directory files, below the root.
const (
	StateDir        = "/var/lib/PedOS/state"
	sessionFile     = "session.json"
	claimedFile     = "session.claimed.json"
	resultFile      = "result.json"
	sessionIDLength = 32 // hex digits: 128 bits
)

// NewSession creates a fresh session id and makes it the live one, replacing
// any earlier session that was never delivered.
func NewSession(c Config, s Session) (Session, error) {
	var b [sessionIDLength / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return s, err
	}
	s.ID = hex.EncodeToString(b[:])
	s.Created = time.Now().UTC()
	if s.Deadline.IsZero() {
		s.Deadline = s.Created.Add(c.ReceiveTimeout)
	}
	dir := c.Path(StateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return s, err
	}
	os.Remove(filepath.Join(dir, claimedFile))
	os.Remove(filepath.Join(dir, resultFile))
	os.Remove(filepath.Join(dir, progressFile))
	return s, writeJSONAtomic(filepath.Join(dir, sessionFile), s)
}

// ErrNoSession means a delivery arrived that no update of dom0's asked for.
var ErrNoSession = errors.New("no update session is waiting for a delivery")

// ClaimSession checks untrustedID against the live session and, if it
// matches and has not expired, claims it so that no second delivery can use
// it. It reads nothing from the caller but the id.
func ClaimSession(c Config, untrustedID string, now time.Time) (Session, error) {
	dir := c.Path(StateDir)
	live := filepath.Join(dir, sessionFile)
	s, err := readSession(live)
	if errors.Is(err, os.ErrNotExist) {
		return s, ErrNoSession
	}
	if err != nil {
		return s, fmt.Errorf("reading %s: %w", live, err)
	}
	if len(untrustedID) != sessionIDLength ||
		subtle.ConstantTimeCompare([]byte(untrustedID), []byte(s.ID)) != 1 {
		return s, errors.New("the session id does not match the live session")
	}
	if now.After(s.Deadline) {
		return s, fmt.Errorf("the session expired at %s", s.Deadline.Format(time.RFC3339))
	}
	// rename is atomic: of two concurrent deliveries only one can claim.
	claimed := filepath.Join(dir, claimedFile)
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

// writeJSONAtomic writes v to path so that a reader sees the old file or the
// new one, complete, whatever happens (F1, F4).
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// CancelSession withdraws the live session (the front end gave up waiting).
func CancelSession(c Config) {
	os.Remove(filepath.Join(c.Path(StateDir), sessionFile))
}
