package repometa

import (
	"slices"
	"time"
)

// Kind names what a finding is about, so that callers and tests can tell
// "no update" from an attack without reading messages.
type Kind string

const (
	NotVerifiable   Kind = "not-verifiable"   // no pinned key: layer 1 only (verify.md §2)
	MissingMetadata Kind = "missing-metadata" // pinned repo without signed metadata (M1, M7)
	BadSignature    Kind = "bad-signature"    // repomd.xml.asc does not verify (step 1)
	WrongKey        Kind = "wrong-key"        // signed, but not by the pinned key (M7)
	BadMetadata     Kind = "bad-metadata"     // malformed, or primary digest mismatch (step 2)
	Rollback        Kind = "rollback"         // older than already accepted (M3)
	KeyChanged      Kind = "key-changed"      // the pinned key differs from the last run's
	FirstUse        Kind = "first-use"        // no earlier record of the repo: trusted on first use
	Stale           Kind = "stale"            // older than max_metadata_age (M9, freeze)
	FutureDated     Kind = "future-dated"     // dated after every time trusted before it: it raises the floor
	NotInMetadata   Kind = "not-in-metadata"  // this build is not in the current primary (M4, M5)
	OlderBuild      Kind = "older-build"      // listed, but a newer build of it is listed too (M4)
	Extraneous      Kind = "extraneous"       // no such package in the primary (M6)
	WrongSoftware   Kind = "wrong-software"   // digest listed, but for another package
	Withheld        Kind = "withheld"         // newer version listed, not delivered (M1, M2)
	Replaced        Kind = "replaced"         // its update not delivered, but a package that obsoletes it (a rename)
	OtherPriority   Kind = "priority"         // a better-priority repository offers another build dnf would take first
	Downgrade       Kind = "downgrade"        // older than installed (M8)
	OtherArch       Kind = "other-arch"       // built for another machine where dnf would take this machine's build (M4)
	BadRequest      Kind = "bad-request"      // the caller's input is unusable
)

// Severity says what a finding does to the batch.
type Severity string

const (
	Notice  Severity = "notice"   // reported, batch still accepted
	Warning Severity = "warning"  // reported prominently, batch still accepted
	Reject  Severity = "rejected" // the whole batch is refused
)

// Finding is one result of a check. Detail is the sentence for people.
type Finding struct {
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	Repo     string   `json:"repo,omitempty"`
	Package  string   `json:"package,omitempty"`
	Detail   string   `json:"detail"`
}

func (f Finding) String() string { return string(f.Severity) + ": " + f.Detail }

// Status is a repository's freshness in plain words.
type Status string

const (
	StatusFresh         Status = "fresh"
	StatusStale         Status = "stale"
	StatusNotVerifiable Status = "not verifiable"
	StatusRejected      Status = "rejected"
)

// RepoSummary is what the front end shows per repository, as dom0's result
// carries it (dom0.Result.Freshness).
type RepoSummary struct {
	Repo     string    `json:"repo"`
	Status   Status    `json:"status"`
	Revision uint64    `json:"revision,omitempty,string"`
	Time     time.Time `json:"time,omitzero"`
	// AgeSeconds is the metadata's age against dom0's time floor, which a clock set
	// back cannot lower (verify.md §2.4): what the freeze check judged.
	AgeSeconds int64  `json:"age_seconds,omitempty"`
	Key        string `json:"key,omitempty"` // the fingerprint of the key that verified it
}

// Verdict collects the findings of one batch. Commit needs it.
type Verdict struct {
	Findings []Finding     `json:"findings"`
	Repos    []RepoSummary `json:"repos"`
	verified []*VerifiedRepo
}

// Accepted reports whether no finding rejects the batch.
func (v *Verdict) Accepted() bool {
	return !slices.ContainsFunc(v.Findings, func(f Finding) bool { return f.Severity == Reject })
}
