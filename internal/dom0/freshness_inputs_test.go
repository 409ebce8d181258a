package dom0_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/benchrun"
	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
)

// What the freshness checks judge with (verify.md §2) must be whole, or the delivery is
// refused naming the cause, and nothing is published: a pinned key that cannot be loaded
// (M7; without it the repository would be "not verifiable", its metadata unchecked), a
// list of installed packages rpm could not give (M2, M8 would pass for want of anything
// installed), signed metadata missing its signature (M1, M7), and staged metadata that is
// a file of dom0's linked in.
func TestFreshnessInputsMustBeWhole(t *testing.T) {
	dom0File := filepath.Join(t.TempDir(), "dom0-file")
	if err := os.WriteFile(dom0File, []byte("dom0's own\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repomd, primary := "repomd--"+benchrun.RepoID+".xml", "primary--"+benchrun.RepoID+".xml"
	for _, tc := range []struct {
		name, script, want string
		setup              func(t *testing.T, c dom0.Config)
	}{
		{"a pinned key that does not load", "", "repo." + benchrun.RepoID + ".metadata_key", func(t *testing.T, c dom0.Config) {
			// The packages' key stays in the keyring; the pin names a file that is not there.
			c.MetadataKeys[benchrun.RepoID] = "/etc/pki/pedos/no-such-key"
		}},
		{"rpm cannot list the installed packages", "", "rpm -qa in ", func(t *testing.T, _ dom0.Config) {
			standInTool(t, "rpm", "#!/bin/sh\necho 'error: no database' >&2\nexit 1\n")
		}},
		{"no signature", "rm \"$2\"/" + repomd + ".asc\n", "refuse the delivery (missing-metadata)", nil},
		{"repomd.xml linked from a file of dom0's", "rm \"$2\"/" + repomd + "\nln " + dom0File + " \"$2\"/" + repomd + "\n",
			repomd + ": not a regular file with a single name", nil},
		{"the primary linked from a file of dom0's", "rm \"$2\"/" + primary + "\nln " + dom0File + " \"$2\"/" + primary + "\n",
			primary + ": not a regular file with a single name", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, batch := benchDom0(t, nil)
			if tc.setup != nil {
				tc.setup(t, c)
			}
			res, log, err := deliverStaged(t, c, batch.Files(), tc.script)
			if err == nil || res.Accepted || !strings.Contains(res.Error, tc.want) {
				t.Errorf("accepted %v (%v): %s; want refused saying %q; log:\n%s", res.Accepted, err, res.Error, tc.want, log)
			}
			assertNothingPublished(t, c)
			if b, err := os.ReadFile(dom0File); err != nil || string(b) != "dom0's own\n" {
				t.Errorf("dom0's file now holds %q (%v)", b, err)
			}
		})
	}
}

// standInTool puts an executable script named name first on the PATH.
func standInTool(t *testing.T, name, script string) {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

// The result carries the freshness verdict for people (verify.md §2): each repository's
// status, its metadata's revision as signed (decimal) and key, and each finding, an error
// only when it refuses. A first delivery of a repository is trusted on first use: a
// finding, not an error.
func TestResultReportsFreshness(t *testing.T) {
	res, signer := acceptedDelivery(t)
	if len(res.Freshness) != 1 {
		t.Fatalf("freshness %+v, want one repository", res.Freshness)
	}
	f := res.Freshness[0]
	if f.Repo != benchrun.RepoID || f.Key != signer || time.Since(time.Unix(int64(f.Revision), 0)).Abs() > time.Hour {
		t.Errorf("freshness %+v, want %s signed by %s at a revision of about now", f, benchrun.RepoID, signer)
	}
	if !slices.ContainsFunc(res.Findings, func(f dom0.Finding) bool { return f.Kind == "first-use" && !f.Error }) {
		t.Errorf("findings %+v, want first-use, not an error", res.Findings)
	}
}

// F4: a publication that fails refuses the delivery, and the freshness state does not move
// forward for a batch that is not in place (M3 would otherwise refuse the same metadata
// next time). The current cached repository is made immutable.
func TestPublishFailureRefusesTheDelivery(t *testing.T) {
	c, second, state, saved := deliveredOnce(t)
	cached := c.Path(dom0.CachedRepoDir)
	testbin.Immutable(t, cached)
	res, log, err := deliverStaged(t, c, second.Files(), "")
	if err == nil || res.Accepted || !strings.Contains(res.Error, "publishing the cached repository") {
		t.Errorf("accepted %v (%v): %s; want refused, not published; log:\n%s", res.Accepted, err, res.Error, log)
	}
	if now, err := os.ReadFile(state); err != nil || string(now) != string(saved) {
		t.Errorf("the freshness state moved for a batch that was not published (%v)", err)
	}
}

// A repository's own excludepkgs reach the freshness checks through the session (M2, M6): the
// receive service parses no dnf configuration, so the front end's reading of the .repo file is
// all it has. A delivered package that its repository's excludepkgs leave out is offered by no
// repository, and is refused as extraneous.
func TestRepoExcludesReachTheChecks(t *testing.T) {
	c, batch := benchDom0(t, nil)
	repoFile, err := os.OpenFile(c.Path(filepath.Join(dnfconf.NetworkReposDir, benchrun.RepoID+".repo")), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repoFile.WriteString("excludepkgs=refuse*\n"); err != nil {
		t.Fatal(err)
	}
	if err := repoFile.Close(); err != nil {
		t.Fatal(err)
	}
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err == nil || res.Accepted || !strings.Contains(res.Error, "(extraneous)") {
		t.Errorf("accepted %v (%v): %s; want the excluded packages refused as extraneous; log:\n%s", res.Accepted, err, res.Error, log)
	}
}
