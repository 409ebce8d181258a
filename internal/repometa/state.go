package repometa

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"pedos.dev/updates/internal/atomicfile"
)

// StatePath is where dom0 keeps its freshness state, below a root prefix.
const StatePath = "/var/lib/PedOS/state/freshness.json"

// DefaultMaxMetadataAge is max_metadata_age when updates.conf sets none.
const DefaultMaxMetadataAge = 7 * 24 * time.Hour

// repoState is the high-water mark of one repository.
type repoState struct {
	Revision       uint64    `json:"revision"`
	Timestamp      time.Time `json:"timestamp"`
	KeyFingerprint string    `json:"key_fingerprint"`
}

type stateFile struct {
	TimeFloor time.Time            `json:"time_floor"`
	Repos     map[string]repoState `json:"repos"`
}

// FreshnessState is dom0's trusted freshness state (verify.md §2 steps 3
// and 4): per repository the highest accepted revision and metadata
// timestamp and the key that signed it, plus the time floor. Each check is
// one method; the state on disk changes only in Commit.
type FreshnessState struct {
	path      string
	saved     stateFile
	buildTime time.Time // when this program was built: a floor no clock can lower
	clock     time.Time // dom0's clock, which may come from an untrusted domain
}

// Load reads the state below root ("" or "/" on a real dom0). A missing file
// is a first run; a corrupt one is an error, never a silent reset.
func Load(root string, buildTime, clock time.Time) (*FreshnessState, error) {
	s := &FreshnessState{path: filepath.Join(root, StatePath), buildTime: buildTime, clock: clock}
	var err error
	s.saved, err = readState(s.path)
	return s, err
}

// maxStateBytes bounds the state file: a few hundred bytes per repository.
const maxStateBytes = 16 << 20

func readState(path string) (stateFile, error) {
	st := stateFile{Repos: map[string]repoState{}}
	data, err := atomicfile.ReadRegular(path, maxStateBytes)
	if errors.Is(err, fs.ErrNotExist) { // a link to a missing file is another error
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("freshness state: %w", err)
	}
	// Commit always writes both fields: a file without them ({}, or
	// "repos": null) is no state of ours, and read as empty it would
	// silently drop rollback protection.
	var file struct {
		TimeFloor *time.Time           `json:"time_floor"`
		Repos     map[string]repoState `json:"repos"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	err = d.Decode(&file)
	if _, end := d.Token(); err == nil && end != io.EOF {
		err = errors.New("more after the state's JSON object")
	}
	if err == nil && (file.TimeFloor == nil || file.Repos == nil) {
		err = errors.New(`"time_floor" or "repos" is missing`)
	}
	if err != nil {
		return st, fmt.Errorf("freshness state %s is corrupt (restore it from a backup; deleting it loses rollback protection): %w", path, err)
	}
	st = stateFile{TimeFloor: *file.TimeFloor, Repos: file.Repos}
	for id, r := range st.Repos {
		if !RepoIDPattern.MatchString(id) {
			return st, fmt.Errorf("freshness state %s names an invalid repository id %q", path, truncate(id))
		}
		// Commit records a verified repomd.xml's timestamp and key: an
		// entry without them (null, {}) would be no high-water mark at all.
		if r.Timestamp.IsZero() || r.KeyFingerprint == "" {
			return st, fmt.Errorf("freshness state %s is corrupt (restore it from a backup; deleting it loses rollback protection): repository %s has no timestamp or key", path, id)
		}
	}
	return st, nil
}

// TimeFloor is the newest time dom0 can trust (verify.md §2 step 4): the
// saved floor, this program's build time, the newest timestamp of the
// given verified metadata, and the clock where it is later.
func (s *FreshnessState) TimeFloor(batch []*VerifiedRepo) time.Time {
	floor := later(s.saved.TimeFloor, s.buildTime, s.clock)
	for _, r := range batch {
		floor = later(floor, r.Timestamp)
	}
	return floor
}

// RepoFiles is what arrived for one enabled repository.
type RepoFiles struct {
	ID        string
	Key       *PinnedKey    // nil when updates.conf pins no key: not verifiable
	Repomd    []byte        // nil when not sent
	Signature []byte        // repomd.xml.asc, nil when not sent
	Primary   io.ReadSeeker // decompressed primary, nil when not sent; nothing else may write it
	// Exclude are the repository's own excludepkgs globs: dnf offers none of those packages
	// from it, so their updates there are not withheld (M2). Include are its includepkgs
	// globs: where there are some, dnf offers only what they match.
	Exclude, Include []string
	Priority         int // dnf's priority= (NetworkRepos.Priority)
}

// VerifiedRepo is a repository's metadata after steps 1 and 2.
type VerifiedRepo struct {
	ID             string
	KeyFingerprint string
	Repomd
	Packages []Package
	Exclude  []string // RepoFiles.Exclude
	Include  []string // RepoFiles.Include
	Priority int      // RepoFiles.Priority
}

func reject(kind Kind, repo, pkg, format string, args ...any) Finding {
	return Finding{Kind: kind, Severity: Reject, Repo: repo, Package: pkg, Detail: fmt.Sprintf(format, args...)}
}

// VerifyRepomd is verify.md §2 steps 1 and 2: the signature of repomd.xml
// by the key pinned for the repository (M7), then repomd.xml, then the
// primary's size and SHA-256 against it, then the primary itself (with the
// sizes of the received packages).
func (s *FreshnessState) VerifyRepomd(in RepoFiles, received []ReceivedPackage) (*VerifiedRepo, []Finding) {
	if in.Key == nil {
		// A warning: freeze, rollback and withholding go undetected there.
		return nil, []Finding{{Kind: NotVerifiable, Severity: Warning, Repo: in.ID,
			Detail: fmt.Sprintf("freshness: not verifiable for repo %s (no metadata key pinned in updates.conf)", in.ID)}}
	}
	var missing []string
	if in.Primary == nil {
		missing = append(missing, "primary")
	}
	if in.Repomd == nil {
		missing = append(missing, "repomd.xml")
	}
	if in.Signature == nil {
		missing = append(missing, "repomd.xml.asc")
	}
	if len(missing) > 0 {
		return nil, []Finding{reject(MissingMetadata, in.ID, "",
			"repo %s has a pinned metadata key but the UpdateVM did not send its %s: possible freeze attack or stripped signature", in.ID, strings.Join(missing, ", "))}
	}
	// The unpacker bounds every file; these bounds are the metadata's own
	// (names.go), before a byte of it is parsed.
	if len(in.Repomd) > int(FileRepomd.MaxSize()) || len(in.Signature) > int(FileRepomdSignature.MaxSize()) {
		return nil, []Finding{reject(BadMetadata, in.ID, "", "metadata for repo %s: repomd.xml or its signature is over its size limit", in.ID)}
	}
	if kind, err := in.Key.verify(in.Repomd, in.Signature, s.TimeFloor(nil)); err != nil {
		return nil, []Finding{reject(kind, in.ID, "", "metadata for repo %s: %v", in.ID, err)}
	}
	md, err := ParseRepomd(in.Repomd)
	if err == nil {
		err = checkDigest(in.Primary, md.Primary)
	}
	var pkgs []Package
	if err == nil {
		sizesFor := map[[sha256Size]byte]bool{}
		for _, r := range received {
			sizesFor[r.SHA256] = true
		}
		pkgs, err = ParsePrimary(in.Primary, sizesFor)
	}
	if err != nil {
		return nil, []Finding{reject(BadMetadata, in.ID, "", "metadata for repo %s: %v", in.ID, err)}
	}
	return &VerifiedRepo{ID: in.ID, KeyFingerprint: in.Key.Fingerprint, Repomd: *md, Packages: pkgs, Exclude: in.Exclude, Include: in.Include, Priority: in.Priority}, nil
}

// checkDigest hashes the received primary and rewinds it for parsing.
func checkDigest(primary io.ReadSeeker, ref PrimaryRef) error {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(primary, ref.OpenSize+1))
	if err != nil {
		return fmt.Errorf("reading primary: %w", err)
	}
	if n != ref.OpenSize || !bytes.Equal(h.Sum(nil), ref.OpenChecksum[:]) {
		return fmt.Errorf("the primary sent does not match the size and SHA-256 that the signed repomd.xml lists for %s", ref.Location)
	}
	_, err = primary.Seek(0, io.SeekStart)
	return err
}

// CheckRollback is verify.md §2 step 3: metadata older than already
// accepted for the repository, by revision or by timestamp, is a rollback
// (M3); equal or newer is accepted. A key differing from the last run's is
// noted: updates.conf changed it, or something is wrong. So is a repository
// with no earlier record: it has no rollback protection until now.
func (s *FreshnessState) CheckRollback(repo *VerifiedRepo) []Finding {
	prev, ok := s.saved.Repos[repo.ID]
	if !ok {
		// Said, so that a lost or emptied state file is noticed.
		return []Finding{{Kind: FirstUse, Severity: Notice, Repo: repo.ID, Detail: fmt.Sprintf(
			"no earlier metadata of repo %s is on record: revision %d is trusted on first use, and rollback protection starts from it", repo.ID, repo.Revision)}}
	}
	var findings []Finding
	if repo.Revision < prev.Revision || repo.Timestamp.Before(prev.Timestamp) {
		older := "its revision and timestamp"
		switch {
		case !repo.Timestamp.Before(prev.Timestamp):
			older = "its revision"
		case repo.Revision >= prev.Revision:
			older = "its timestamp"
		}
		findings = append(findings, reject(Rollback, repo.ID, "",
			"metadata for repo %s is older (%s: revision %d, %s) than already accepted (%d, %s): possible rollback",
			repo.ID, older, repo.Revision, repo.Timestamp.Format(time.RFC3339), prev.Revision, prev.Timestamp.Format(time.RFC3339)))
	}
	if prev.KeyFingerprint != repo.KeyFingerprint {
		findings = append(findings, Finding{Kind: KeyChanged, Severity: Notice, Repo: repo.ID,
			Detail: fmt.Sprintf("metadata for repo %s is now verified by key %s (last time by %s)", repo.ID, repo.KeyFingerprint, prev.KeyFingerprint)})
	}
	return findings
}

// Policy is the freshness configuration of updates.conf.
type Policy struct {
	MaxMetadataAge time.Duration // 0 means DefaultMaxMetadataAge
	RequireFresh   bool          // a stale repository rejects the batch
}

// futureSkew is how far metadata may be dated after dom0's clock unremarked:
// a publisher's clock and dom0's may differ by minutes.
const futureSkew = time.Hour

// CheckAge is verify.md §2 step 4: metadata older than max_metadata_age,
// measured against the time floor so that a clock set back cannot hide it
// (M9, freeze). A warning unless require_fresh. Metadata dated after every
// time trusted before it is a notice: it cannot be told from a clock that
// is behind, but it becomes the floor, against which later metadata ages
// and keys expire (docs/freshness.md).
func (s *FreshnessState) CheckAge(repo *VerifiedRepo, floor time.Time, p Policy) []Finding {
	var findings []Finding
	before := s.TimeFloor(nil)
	if lead := repo.Timestamp.Sub(before); lead > futureSkew {
		findings = append(findings, Finding{Kind: FutureDated, Severity: Notice, Repo: repo.ID, Detail: fmt.Sprintf(
			"metadata for repo %s is dated %s, %s after the newest time dom0 trusted before it (%s, its clock or its saved time floor): dom0's clock is behind, or the publisher's ran ahead; once accepted, the time floor is at least that date, against which later metadata's age and keys' expiry are judged",
			repo.ID, repo.Timestamp.Format(time.RFC3339), HumanAge(lead), before.Format(time.RFC3339))})
	}
	maxAge := cmp.Or(p.MaxMetadataAge, DefaultMaxMetadataAge)
	// Also after a notice: another repository of the batch may have
	// raised the floor further (M9).
	age := floor.Sub(repo.Timestamp)
	if age <= maxAge {
		return findings
	}
	severity := Warning
	if p.RequireFresh {
		severity = Reject
	}
	return append(findings, Finding{Kind: Stale, Severity: severity, Repo: repo.ID, Detail: fmt.Sprintf(
		"metadata for repo %s is %s old (from %s, trusted time %s), more than max_metadata_age %s: possible freeze attack, or the repository is no longer updated",
		repo.ID, HumanAge(age), repo.Timestamp.Format(time.RFC3339), floor.Format(time.RFC3339), HumanAge(maxAge))})
}

// HumanAge is a metadata age for people: minutes under an hour, hours
// under two days, days after that, with one decimal where it says more
// ("45 min", "2 h", "3.5 days").
func HumanAge(d time.Duration) string {
	switch {
	case d < time.Hour:
		return strconv.FormatInt(int64(d.Round(time.Minute)/time.Minute), 10) + " min"
	case d < 48*time.Hour:
		return oneDecimal(d.Hours()) + " h"
	}
	return oneDecimal(d.Hours()/24) + " days"
}

// oneDecimal formats x with one decimal, without a trailing ".0".
func oneDecimal(x float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(x, 'f', 1, 64), ".0")
}

// raise moves one repository's high-water mark, and the floor, forward.
func (st *stateFile) raise(id string, r repoState) {
	prev := st.Repos[id]
	prev.Revision = max(prev.Revision, r.Revision)
	prev.Timestamp = later(prev.Timestamp, r.Timestamp)
	prev.KeyFingerprint = r.KeyFingerprint
	st.Repos[id] = prev
	st.TimeFloor = later(st.TimeFloor, r.Timestamp)
}

// Commit saves the high-water marks of an accepted batch atomically. It
// only moves forward: it merges with the state on disk (another run may
// have committed since Load) and never lowers a revision, a timestamp or
// the floor. The clock is not saved: a clock set forward must not push
// the floor into the future for good.
func (s *FreshnessState) Commit(v *Verdict) error {
	if !v.Accepted() {
		return errors.New("freshness state: refusing to commit a rejected batch")
	}
	st, err := readState(s.path)
	if err != nil {
		return err
	}
	st.TimeFloor = later(st.TimeFloor, s.saved.TimeFloor, s.buildTime)
	for id, r := range s.saved.Repos {
		st.raise(id, r)
	}
	for _, r := range v.verified {
		st.raise(r.ID, repoState{Revision: r.Revision, Timestamp: r.Timestamp, KeyFingerprint: r.KeyFingerprint})
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("freshness state: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("freshness state %s: %w", s.path, err)
	}
	s.saved = st
	return nil
}
