package cmdline_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// TestHelpAndUsageErrors runs every command that uses this package: help
// asked for goes to stdout with exit 0 and nothing on stderr, an unknown
// option is a usage error on stderr with exit 2 and nothing on stdout (which
// is a data channel for qfile-agent and qrexec-client-vm).
func TestHelpAndUsageErrors(t *testing.T) {
	for _, c := range []struct {
		command string
		help    [][]string // each asks for the help
		bad     []string   // a usage error
	}{
		{"pedos-lab", [][]string{{"--help"}, {"-h"}, {"help"}, {"up", "--help"}, {"attack", "-h"}}, []string{"status", "--bogus"}},
		{"pedos-policy-eval", [][]string{{"--help"}, {"-h"}}, []string{"--bogus"}},
		{"pedos-run", [][]string{{"--help"}}, []string{"--bogus", "vm", "true"}},
		{"qrexec-client", [][]string{{"--help"}}, []string{"--bogus"}},
		{"qrexec-client-vm", [][]string{{"--help"}}, []string{"--bogus"}},
		{"qrexec-daemon", [][]string{{"--help"}}, []string{"--bogus"}},
		{"qrexec-agent", [][]string{{"--help"}}, []string{"--bogus"}},
		{"pedos-bench", [][]string{{"--help"}}, []string{"--bogus"}},
		{"qfile-agent", [][]string{{"--help"}}, []string{"--bogus"}},
	} {
		t.Run(c.command, func(t *testing.T) {
			bin := testbin.Path(t, c.command)
			for _, args := range c.help {
				stdout, stderr, code := testbin.Run(t, exec.Command(bin, args...))
				if code != 0 || stderr != "" || !strings.HasPrefix(strings.ToLower(stdout), "usage: "+c.command) {
					t.Errorf("%s %s: exit %d, stdout %d bytes, stderr %q", c.command, strings.Join(args, " "), code, len(stdout), stderr)
				}
			}
			stdout, stderr, code := testbin.Run(t, exec.Command(bin, c.bad...))
			if code != 2 || stdout != "" || !strings.HasPrefix(stderr, c.command+": flag provided but not defined: -bogus\n") {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", c.command, strings.Join(c.bad, " "), code, stdout, stderr)
			}
		})
	}
}
