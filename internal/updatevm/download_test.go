package updatevm

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"pedos.dev/updates/internal/updatecall"
)

// recordingDNF answers check-update 100 (updates) and records every dnf
// command line.
type recordingDNF struct{ calls [][]string }

func (*recordingDNF) ImportRPMDB(string, string) error { return nil }

func (r *recordingDNF) DNF(_ context.Context, args []string, _ io.Reader, _, _ io.Writer) (int, error) {
	r.calls = append(r.calls, args)
	if slices.Contains(args, "check-update") {
		return 100, nil
	}
	return 0, nil
}

// The list of updates for scripts comes from repoquery with the options
// that choose the packages (repositories, excludes) and no others:
// --obsoletes would replace its format, -v put debug lines among it.
func TestCheckUpdatesRepoqueryOptions(t *testing.T) {
	dnf := &recordingDNF{}
	u := &UpdateVM{InstallRoot: t.TempDir(), Tools: dnf, Log: io.Discard}
	writeBelow(t, u.InstallRoot, updatecall.SyncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/current/\n")
	opts := []string{"--enablerepo=testing", "--disablerepo=old*", "--exclude=kernel*", "--excludepkgs=x", "--obsoletes", "-v", "--best"}
	if err := u.CheckUpdates(t.Context(), Request{DNFOptions: opts}, io.Discard); !errors.Is(err, ErrUpdatesAvailable) {
		t.Fatalf("CheckUpdates: %v", err)
	}
	if len(dnf.calls) != 2 || !slices.Contains(dnf.calls[0], "--obsoletes") || !slices.Contains(dnf.calls[1], "repoquery") {
		t.Fatalf("dnf calls %q, want check-update with every option, then repoquery", dnf.calls)
	}
	for _, a := range opts {
		selecting := !slices.Contains([]string{"--obsoletes", "-v", "--best"}, a)
		if slices.Contains(dnf.calls[1], a) != selecting {
			t.Errorf("repoquery %q: has %s = %v, want %v", dnf.calls[1], a, !selecting, selecting)
		}
	}
}
