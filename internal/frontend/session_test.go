package frontend

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/updatecall"
)

// The session carries the repositories dom0's configuration enables with
// the user's switches, and their lists, to the receive service, which reads
// no configuration file: what the service claims is what the front end read.
func TestNewSessionCarriesRepos(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	dir := c.Path(dnfconf.NetworkReposDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	repos := "[updates]\nexcludepkgs=kernel*\npriority=10\n[testing]\nenabled=0\nincludepkgs=hello\n[other]\n"
	if err := os.WriteFile(filepath.Join(dir, "pedos.repo"), []byte(repos), 0o644); err != nil {
		t.Fatal(err)
	}
	s, release, err := NewSession(c, dom0.Session{Action: "upgrade"}, []dnfconf.RepoSwitch{{Glob: "other"}, {Enable: true, Glob: "test*"}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// The UpdateVM checks the id's form before it downloads: dom0's ids pass.
	if !updatecall.ValidSessionID(s.ID) || updatecall.SessionIDLength != dom0.SessionIDLength {
		t.Errorf("session id %q does not pass the UpdateVM's check (length %d, dom0's %d)", s.ID, updatecall.SessionIDLength, dom0.SessionIDLength)
	}
	claimed, err := dom0.ClaimSession(c, s.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := claimed.Repos
	if !slices.Equal(got.Enabled, []string{"testing", "updates"}) ||
		!slices.Equal(got.RepoExcludes["updates"], []string{"kernel*"}) ||
		!slices.Equal(got.RepoIncludes["testing"], []string{"hello"}) || got.Priority("updates") != 10 || got.Priority("testing") != 99 {
		t.Errorf("claimed session's repositories %+v; want testing (includes hello) and updates (excludes kernel*, priority 10), other disabled", got)
	}
}
