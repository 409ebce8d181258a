package dom0_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/benchrun"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
)

// A delivery whose freshness state cannot be saved after the publish is
// accepted, with a warning: the batch is in place, and a result that said
// "refused" would hide it. The state stays as it was, which the suite's
// kill tests (F1, F4) also allow: the same metadata passes again.
func TestStateNotSavedAfterPublish(t *testing.T) {
	c, second, state, saved := deliveredOnce(t)
	testbin.Immutable(t, state)
	res, log, serveErr := deliverStaged(t, c, second.Files(), "")
	if !res.Accepted || serveErr != nil || !strings.Contains(log, "the freshness state was not saved") {
		t.Fatalf("accepted %v (%v); want accepted with a warning; log:\n%s", res.Accepted, serveErr, log)
	}
	entries, err := os.ReadDir(filepath.Join(c.Path(dom0.CachedRepoDir), "rpm"))
	if err != nil || len(entries) != 1 || entries[0].Name() != filepath.Base(second.Packages[0]) {
		t.Errorf("the cached repository holds %v (%v), want the second delivery", entries, err)
	}
	if now, err := os.ReadFile(state); err != nil || !slices.Equal(now, saved) {
		t.Errorf("the freshness state changed (%v)", err)
	}
}

// deliveredOnce is a dom0 root that has accepted one delivery, a second
// batch of the same signer to deliver next, and the freshness state file
// with what the first delivery saved there.
func deliveredOnce(t *testing.T) (c dom0.Config, second benchrun.Batch, state string, saved []byte) {
	t.Helper()
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	first, err := benchrun.MakeBatch(t.TempDir(), "one", []int{4 << 10}, signer)
	if err != nil {
		t.Fatal(err)
	}
	second, err = benchrun.MakeBatch(t.TempDir(), "two", []int{4 << 10}, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err = benchrun.NewDom0Root(t.Context(), t.TempDir(), signer)
	if err != nil {
		t.Fatal(err)
	}
	if res, log, serveErr := deliverStaged(t, c, first.Files(), ""); !res.Accepted {
		t.Fatalf("first delivery refused: %v\n%s", serveErr, log)
	}
	state = c.Path(repometa.StatePath)
	if saved, err = os.ReadFile(state); err != nil {
		t.Fatal(err)
	}
	return c, second, state, saved
}

// updates.conf's max_metadata_age reaches the freshness check (M9): with a
// limit of a second, metadata two seconds old is stale (a warning, since
// require_fresh is off), where the default of seven days says nothing.
func TestMaxMetadataAgeIsApplied(t *testing.T) {
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := benchrun.MakeBatch(t.TempDir(), "aged", []int{4 << 10}, signer)
	if err != nil {
		t.Fatal(err)
	}
	// Two seconds past the metadata's timestamp, which may be ahead of the
	// clock (the batches of one process have increasing revisions).
	time.Sleep(time.Until(time.Unix(batch.Revision, 0).Add(2100 * time.Millisecond)))
	for _, maxAge := range []time.Duration{0, time.Second} {
		c, err := benchrun.NewDom0Root(t.Context(), t.TempDir(), signer)
		if err != nil {
			t.Fatal(err)
		}
		c.MaxMetadataAge = maxAge
		res, log, serveErr := deliverStaged(t, c, batch.Files(), "")
		stale := slices.ContainsFunc(res.Findings, func(f dom0.Finding) bool { return f.Kind == string(repometa.Stale) && !f.Error })
		if !res.Accepted || stale != (maxAge != 0) {
			t.Errorf("max_metadata_age %v: accepted %v (%v), a stale warning %v, want accepted and %v; log:\n%s", maxAge, res.Accepted, serveErr, stale, maxAge != 0, log)
		}
	}
}

// The receive judges keys at dom0's time floor, not at its clock, which
// may have come from a VM (P6): with the floor 30 days ahead (metadata
// verified before), a package whose key expires in 10 days is refused.
func TestKeysAreJudgedAtTheTimeFloor(t *testing.T) {
	signer, err := testrepo.NewSigner(testrepo.KeySpec{Lifetime: 10 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := benchrun.MakeBatch(t.TempDir(), "expiring", []int{4 << 10}, signer)
	if err != nil {
		t.Fatal(err)
	}
	// dom0's root is made for another key (rpm 4.18 refuses to import
	// testrepo's expiring key, though it takes gpg's), then the keyring's
	// file holds the expiring one.
	other, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := benchrun.NewDom0Root(t.Context(), t.TempDir(), other)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := filepath.Glob(filepath.Join(c.Path(c.KeyringDir), "RPM-GPG-KEY-*"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("keyring files %v (%v), want one", keys, err)
	}
	if err := os.WriteFile(keys[0], signer.PublicKeyArmored(), 0o644); err != nil {
		t.Fatal(err)
	}
	floor := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if err := os.MkdirAll(filepath.Dir(c.Path(repometa.StatePath)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path(repometa.StatePath), []byte(`{"time_floor": "`+floor+`", "repos": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	res, log, _ := deliverStaged(t, c, batch.Files(), "")
	if res.Accepted || len(res.Packages) != 1 || res.Packages[0].OK || !strings.Contains(res.Packages[0].Rejected, "expired") {
		t.Errorf("accepted %v, packages %+v; want the package refused for its key, expired at the time floor; log:\n%s", res.Accepted, res.Packages, log)
	}
}
