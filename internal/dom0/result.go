package dom0

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"time"

	"pedos.dev/updates/internal/atomicfile"
	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/rpm"
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
	Error string `json:"error,omitempty"`
	// omitzero: present (as [] for none) in every result the service
	// writes, left out only where a caller dropped it (the update log's
	// finished record, whose delivery record lists them).
	Packages []PackageCheck `json:"packages,omitzero"`
	// Freshness has one entry per repository whose metadata was checked or
	// could not be (verify.md §2).
	Freshness []repometa.RepoSummary `json:"freshness,omitempty"`
	// Findings are freshness findings (rollback, freeze, withholding, …).
	Findings []Finding `json:"findings,omitempty"`
	Bytes    int64     `json:"bytes"`
}

// PackageCheck is what dom0 concluded about one received package.
type PackageCheck struct {
	File   string `json:"file"`
	OK     bool   `json:"ok"`
	NEVRA  string `json:"nevra,omitempty"`
	Signer string `json:"signer,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size,omitempty"` // bytes read: all of an accepted package, as far as the check read of a rejected one
	// The rest of verify.md §1.5's structured result: every header
	// signature's signer (Signer is the first), the signed digests.
	Signers       []string `json:"signers,omitempty"`
	HeaderSHA256  string   `json:"header_sha256,omitempty"`
	PayloadDigest string   `json:"payload_digest,omitempty"` // ALGO:HEX
	// Obsoletes are the package's, from its signed header: installing it
	// replaces what they cover (the front end checks that dnf did).
	Obsoletes []rpm.Obsolete `json:"obsoletes,omitempty"`
	Rejected  string         `json:"rejected,omitempty"`
	// Kind is the rejection's class when a verifier refused the package
	// (rpm.Kind: "verifiers disagree" is a security error of its own).
	Kind string `json:"kind,omitempty"`
}

// reject records why a package was refused.
func (p *PackageCheck) reject(err error) {
	p.OK, p.Rejected = false, err.Error()
	if rpmErr, ok := errors.AsType[*rpm.Error](err); ok {
		p.Kind = rpmErr.Kind.String()
	}
}

// Finding is one freshness finding, by kind and package.
type Finding struct {
	Kind    string `json:"kind"`
	Repo    string `json:"repo,omitempty"`
	Package string `json:"package,omitempty"`
	Error   bool   `json:"error"`
	Message string `json:"message"`
}

// WriteResult publishes r for the front end, so that it reads the old
// result or the new one, complete, whatever happens (F1, F4).
func WriteResult(c Config, r Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(c.Path(StateDir), ResultFile), append(b, '\n'), 0o600)
}
