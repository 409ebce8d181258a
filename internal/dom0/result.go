package dom0

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Result is the explicit answer of one delivery, written by the receive
// service for the waiting front end (overview.md step 6): no polling on
// process names, no errors file.
type Result struct {
	Session  string    `json:"session"`
	Caller   string    `json:"caller"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Accepted is true only when every file passed every check and the new
	// cached repository was published.
	Accepted bool `json:"accepted"`
	// Error is the batch-level cause of a rejection, if any.
	Error    string         `json:"error,omitempty"`
	Packages []PackageCheck `json:"packages"`
	// Freshness has one entry per repository whose metadata was checked or
	// could not be (verify.md §2).
	Freshness []RepoFreshness `json:"freshness,omitempty"`
	// Findings are freshness findings (rollback, freeze, withholding, …).
	Findings []Finding `json:"findings,omitempty"`
	Bytes    int64     `json:"bytes"`
}

// PackageCheck is what dom0 concluded about one received package.
type PackageCheck struct {
	File     string `json:"file"`
	OK       bool   `json:"ok"`
	NEVRA    string `json:"nevra,omitempty"`
	Signer   string `json:"signer,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Size     int64  `json:"size,omitempty"`
	Rejected string `json:"rejected,omitempty"`
}

// RepoFreshness summarises one repository's metadata for people.
type RepoFreshness struct {
	Repo     string    `json:"repo"`
	Status   string    `json:"status"` // fresh, stale, not-verifiable, rejected
	Revision string    `json:"revision,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	Key      string    `json:"key,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// Finding is one freshness finding, by kind and package.
type Finding struct {
	Kind    string `json:"kind"`
	Repo    string `json:"repo,omitempty"`
	Package string `json:"package,omitempty"`
	Error   bool   `json:"error"`
	Message string `json:"message"`
}

// WriteResult publishes r for the front end.
func WriteResult(c Config, r Result) error {
	return writeJSONAtomic(filepath.Join(c.Path(StateDir), resultFile), r)
}

// ErrNoResult means no delivery finished for the session: the UpdateVM
// never called, or the service died before it could answer.
var ErrNoResult = errors.New("no delivery arrived for this update session")

// ReadResult returns the result of the given session.
func ReadResult(c Config, session string) (Result, error) {
	var r Result
	b, err := os.ReadFile(filepath.Join(c.Path(StateDir), resultFile))
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
		return r, ErrNoResult
	}
	return r, nil
}
