package cmdline_test

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

// versionLine is what follows the command's name in a --version line:
// make's builds (PEDOS_BIN) record the release and the commit, the tests'
// own builds nothing.
const versionLine = `(\(development build: no release or commit recorded\)|[0-9][0-9a-z.~^+]* \(commit [0-9a-f]{7,}(-dirty)?, [0-9TZ:+-]+\))`

// TestVersionOption: every command a person runs answers --version on
// stdout with exit 0 and nothing on stderr, before anything else it would
// do (pedos-lab and pedos-dom0-update with other words after it; qfile-agent
// sends no stream).
func TestVersionOption(t *testing.T) {
	for _, c := range []struct {
		command string
		args    []string
	}{
		{"pedos-dom0-update", []string{"--version", "--check-only"}},
		{"pedos-download-dom0-updates", []string{"--version", "--sync"}},
		{"pedos-lab", []string{"--version"}},
		{"pedos-policy-eval", []string{"--version"}},
		{"pedos-rpmcheck", []string{"--version"}},
		{"pedos-run", []string{"--version", "vm", "true"}},
		{"pedos-bench", []string{"--version"}},
		{"qrexec-client", []string{"--version"}},
		{"qrexec-client-vm", []string{"--version"}},
		{"qrexec-daemon", []string{"--version"}},
		{"qrexec-agent", []string{"--version"}},
		{"qfile-agent", []string{"--version", "/etc/hostname"}},
		{"qfile-dom0-unpacker", []string{"--version"}},
		{"pedos-receive-updates", []string{"--version"}},
	} {
		t.Run(c.command, func(t *testing.T) {
			stdout, stderr, code := testbin.Run(t, exec.Command(testbin.Path(t, c.command), c.args...))
			want := regexp.MustCompile(`^` + c.command + ` ` + versionLine + `\n$`)
			if code != 0 || stderr != "" || !want.MatchString(stdout) {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want exit 0 and a line matching %s", c.command, strings.Join(c.args, " "), code, stdout, stderr, want)
			}
		})
	}
}
