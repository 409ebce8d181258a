package dom0_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"pedos.dev/updates/internal/benchrun"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/repometa"
)

// A delivery whose freshness state cannot be saved is refused, and the
// cached repository stays as it was: the state is committed before the
// publish, so a result that says "refused" never hides a published batch.
func TestStateCommittedBeforePublish(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not installed")
	}
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	first, err := benchrun.MakeBatch(t.TempDir(), "one", []int{4 << 10}, signer)
	if err != nil {
		t.Fatal(err)
	}
	second, err := benchrun.MakeBatch(t.TempDir(), "two", []int{4 << 10}, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := benchrun.NewDom0Root(t.Context(), t.TempDir(), signer)
	if err != nil {
		t.Fatal(err)
	}
	if res, log, serveErr := deliverStaged(t, c, first.Files(), ""); !res.Accepted {
		t.Fatalf("first delivery refused: %v\n%s", serveErr, log)
	}
	published := func() []string {
		entries, err := os.ReadDir(filepath.Join(c.Path(dom0.CachedRepoDir), "rpm"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	before := published()
	state := c.Path(repometa.StatePath)
	if out, err := exec.Command("chattr", "+i", state).CombinedOutput(); err != nil {
		t.Skipf("chattr +i %s: %v %s", state, err, out)
	}
	defer exec.Command("chattr", "-i", state).Run()
	res, log, serveErr := deliverStaged(t, c, second.Files(), "")
	if res.Accepted || serveErr == nil {
		t.Fatalf("a delivery whose state could not be saved was accepted; log:\n%s", log)
	}
	if after := published(); !slices.Equal(before, after) {
		t.Errorf("the refused delivery changed the cached repository: %v, was %v", after, before)
	}
}
