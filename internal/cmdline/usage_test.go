package cmdline_test

import (
	"errors"
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
		{"short", "--bogus", 2, "demo: unknown option --bogus\ndemo --help explains\n"},
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

// The flag package's parse errors are said in the usage texts' words: the
// option as they write it, and what its value must look like.
func TestOptionError(t *testing.T) {
	fs := cmdline.Usage{Command: "demo"}.FlagSet()
	fs.Duration("timeout", 0, "")
	fs.Int("n", 0, "")
	fs.Bool("json", false, "")
	fs.String("d", "", "")
	fs.Func("mode", "", func(string) error { return errors.New("want fast or slow") })
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown option --bogus"},
		{[]string{"-x"}, "unknown option -x"},
		{[]string{"-d"}, "option -d needs a value"},
		{[]string{"--timeout", "5"}, `--timeout "5": want a duration such as 30s, 10m or 1h`},
		{[]string{"--timeout", "a: b"}, `--timeout "a: b": want a duration such as 30s, 10m or 1h`},
		{[]string{"-n", "many"}, `-n "many": want a whole number`},
		{[]string{"--json=maybe"}, `--json="maybe": want true or false`},
		{[]string{"--mode", "medium"}, `--mode "medium": want fast or slow`},
	} {
		err := fs.Parse(tc.args)
		if got := cmdline.OptionError(fs, err); err == nil || got != tc.want {
			t.Errorf("%q: %q (from %v), want %q", tc.args, got, err, tc.want)
		}
	}
}
