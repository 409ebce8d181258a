package cmdline_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"pedos.dev/updates/internal/cmdline"
)

// usageChildEnv makes the test binary, run again by TestParseOptionsOnly,
// parse the arguments after it with cmdline itself, which exits.
const usageChildEnv = "CMDLINE_TEST_USAGE_CHILD"

// A command that takes no operands refuses a word left over with exit 2,
// never ignores it; a usage error prints OnError, when set, in place of the
// whole usage (a usage pages long would bury the message).
func TestParseOptionsOnly(t *testing.T) {
	if mode := os.Getenv(usageChildEnv); mode != "" {
		u := cmdline.Usage{Command: "demo", Text: "usage: demo [--flag]\n"}
		if mode == "short" {
			u.OnError = "demo --help explains"
		}
		fs := u.FlagSet()
		fs.Bool("flag", false, "")
		u.ParseOptionsOnly(fs, strings.Fields(os.Getenv(usageChildEnv+"_ARGS")))
		os.Exit(0)
	}
	for _, tc := range []struct {
		mode, args string
		code       int
		stderr     string
	}{
		{"full", "--flag", 0, ""},
		{"full", "--flag extra", 2, "demo: unexpected argument \"extra\": every setting is an option\nusage: demo [--flag]\n"},
		{"short", "extra", 2, "demo: unexpected argument \"extra\": every setting is an option\ndemo --help explains\n"},
		{"short", "--bogus", 2, "demo: flag provided but not defined: -bogus\ndemo --help explains\n"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestParseOptionsOnly$")
		cmd.Env = append(os.Environ(), usageChildEnv+"="+tc.mode, usageChildEnv+"_ARGS="+tc.args)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != tc.code || stderr.String() != tc.stderr || stdout.Len() != 0 {
			t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", tc.mode, tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stderr)
		}
	}
}
