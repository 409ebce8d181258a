package cmdline_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"pedos.dev/updates/internal/cmdline"
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
			if code != 2 || stdout != "" || !strings.HasPrefix(stderr, c.command+": unknown option --bogus\n") {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", c.command, strings.Join(c.bad, " "), code, stdout, stderr)
			}
		})
	}
}

// JSON for a terminal is ASCII: C1 controls (U+009B, a terminal's CSI),
// DEL, bidi overrides and characters above U+FFFF are \u escapes, and the
// text reads back the same.
func TestWriteJSONIsASCII(t *testing.T) {
	in := map[string]string{"text": "a\u009b[2Jb\u202ec\u00e9\U0001F600\x7f\x1b"}
	for _, write := range []func(io.Writer, any) error{cmdline.WriteJSON, cmdline.WriteJSONLine} {
		var out strings.Builder
		if err := write(&out, in); err != nil {
			t.Fatal(err)
		}
		for i, b := range []byte(out.String()) {
			if b >= 0x7f {
				t.Fatalf("byte %#x at %d in %q", b, i, out.String())
			}
		}
		var back map[string]string
		if err := json.Unmarshal([]byte(out.String()), &back); err != nil || back["text"] != in["text"] {
			t.Errorf("decoded %q (%v), want %q", back["text"], err, in["text"])
		}
		if err := write(&out, make(chan int)); err == nil {
			t.Error("a channel encoded without an error")
		}
	}
	// The line form is one line.
	var line strings.Builder
	if err := cmdline.WriteJSONLine(&line, map[string]any{"a": []int{1, 2}, "b": "c"}); err != nil || line.String() != `{"a":[1,2],"b":"c"}`+"\n" {
		t.Errorf("WriteJSONLine wrote %q (%v)", line.String(), err)
	}
}
