package release

import "testing"

// The --version line names the release and the commit the build recorded,
// and says so when a build recorded none.
func TestLine(t *testing.T) {
	saved := [3]string{name, commit, commitTime}
	t.Cleanup(func() { name, commit, commitTime = saved[0], saved[1], saved[2] })
	for _, c := range []struct{ release, commit, time, want string }{
		{"0.1.0", "2cb70961dd7b", "2026-11-28T08:15:32+00:00", "qfile-agent 0.1.0 (commit 2cb70961dd7b, 2026-11-28T08:15:32+00:00)"},
		{"0.1.0", "2cb70961dd7b-dirty", "2026-11-28T08:15:32+00:00", "qfile-agent 0.1.0 (commit 2cb70961dd7b-dirty, 2026-11-28T08:15:32+00:00)"},
		{"0.1.0", "", "", "qfile-agent 0.1.0"},
		{"", "", "", "qfile-agent (development build: no release or commit recorded)"},
	} {
		name, commit, commitTime = c.release, c.commit, c.time
		if got := Line("qfile-agent"); got != c.want {
			t.Errorf("release %q commit %q: %q, want %q", c.release, c.commit, got, c.want)
		}
	}
}
