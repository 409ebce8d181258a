package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/attack"
	"pedos.dev/updates/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// TestExitStatus: usage errors exit 2 with the reason, the lab's failures
// 1, and exec 125 when it cannot run the command (docs/man/pedos-lab.1.md).
// None of these needs a lab, or root.
func TestExitStatus(t *testing.T) {
	bin := testbin.Path(t, "pedos-lab")
	notALab := filepath.Join(t.TempDir(), "not-a-lab")
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, 2, "no command: want up, down, status, exec, publish or attack"},
		{[]string{"publish", "--dir", notALab, "requires=x"}, 2, `"requires=x" comes before any NAME-VERSION-RELEASE`},
		{[]string{"publish", "--dir", notALab}, 2, "nothing to publish"},
		{[]string{"publish", "--dir", notALab, "--time", "yesterday", "hello-1-1"}, 2, `--time "yesterday"`},
		{[]string{"attack", "--dir", notALab, "--only", "S1,ZZ9"}, 2, "--only ZZ9: no such row or table"},
		{[]string{"attack", "--dir", notALab, "--only", "H1", "S2"}, 2, `unexpected argument "S2": select rows with --only`},
		{[]string{"attack", "--dir", notALab, "S2"}, 2, `unexpected argument "S2": select rows with --only`},
		{[]string{"up", "--dir", notALab, "--updatevm", "../x"}, 2, `--updatevm "../x": a domain name is a letter, then`},
		{[]string{"status", "--dir", notALab, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"down", "--dir", notALab, "now"}, 2, `unexpected argument "now"`},
		{[]string{"down", "--dir", notALab}, 1, notALab + " is not a lab directory"},
		{[]string{"publish", "--dir", notALab, "hello-1-1"}, 1, notALab + " is not a lab directory"},
		{[]string{"exec", "--dir", notALab, "dom0", "--", "true"}, 125, notALab + " is not a lab directory"},
		{[]string{"exec", "--dir", notALab, "-e", "FOO", "dom0", "--", "true"}, 2, "pedos-lab: -e \"FOO\": want KEY=VALUE\n"},
		{[]string{"publish", "--dir", notALab, "b-1-1 arch=x/../PWN"}, 2, `arch "x/../PWN": want`},
	} {
		stdout, stderr, code := testbin.Run(t, exec.Command(bin, c.args...))
		if code != c.code || stdout != "" || !strings.HasPrefix(stderr, "pedos-lab: ") || !strings.Contains(stderr, c.stderr) {
			t.Errorf("pedos-lab %s: exit %d, stdout %q, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stdout, stderr, c.code, c.stderr)
		}
	}
	// With --json a failure is in JSON on stdout too.
	stdout, _, code := testbin.Run(t, exec.Command(bin, "status", "--dir", notALab, "--json"))
	var failure struct {
		Exit    int
		Message string
	}
	if err := json.Unmarshal([]byte(stdout), &failure); err != nil || code != 1 || failure.Exit != 1 || !strings.Contains(failure.Message, "is not a lab directory") {
		t.Errorf("status --json on no lab: exit %d, stdout %q (%v)", code, stdout, err)
	}
	// A usage error too: status's failure object, attack's report of no rows.
	stdout, _, code = testbin.Run(t, exec.Command(bin, "status", "--dir", notALab, "--json", "--bogus"))
	if err := json.Unmarshal([]byte(stdout), &failure); err != nil || code != 2 || failure.Exit != 2 || failure.Message != "unknown option --bogus" {
		t.Errorf("status --json --bogus: exit %d, stdout %q (%v)", code, stdout, err)
	}
	// --json as the flag package reads it: any bool spelling, the last one counting.
	for args, wantJSON := range map[string]bool{"--json=1 --bogus": true, "-json=T --bogus": true, "--json --json=false --bogus": false} {
		stdout, _, code = testbin.Run(t, exec.Command(bin, append([]string{"status", "--dir", notALab}, strings.Fields(args)...)...))
		if code != 2 || (stdout != "") != wantJSON {
			t.Errorf("status %s: exit %d, stdout %q; want exit 2, JSON %v", args, code, stdout, wantJSON)
		}
	}
	var rep struct {
		Rows  []any
		Total map[string]int
		Error string
		Exit  int
	}
	stdout, _, code = testbin.Run(t, exec.Command(bin, "attack", "--dir", notALab, "--json", "--only", "Z9"))
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 2 || rep.Exit != 2 || rep.Rows == nil || len(rep.Rows) != 0 || rep.Total["FAIL"] != 0 || !strings.Contains(rep.Error, "--only Z9: no such row") {
		t.Errorf("attack --json --only Z9: exit %d, stdout %q (%v)", code, stdout, err)
	}
	if _, err := os.Stat(notALab); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want it never created", notALab, err)
	}
}

// TestDownLab: on a lab that is down, status lists no qrexec sockets (their
// files stay, answered by nothing) and exec says how to bring the lab up.
// DIR is as down leaves it: lab.json with no domains, the socket files.
func TestDownLab(t *testing.T) {
	bin := testbin.Path(t, "pedos-lab")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lab.json"), []byte(`{"version": 1, "updatevm": "sys-firewall", "domains": {}, "mirror_addr": "198.18.0.1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	sockets := filepath.Join(dir, "qrexec", "sys-firewall")
	if err := os.MkdirAll(sockets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sockets, "daemon.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := testbin.Run(t, exec.Command(bin, "status", "--dir", dir))
	if code != 0 || !strings.HasPrefix(stdout, "lab "+dir+": down") || strings.Contains(stdout, "socket") {
		t.Errorf("status of a lab that is down: exit %d, stdout %q, stderr %q; want it down with no sockets", code, stdout, stderr)
	}
	stdout, stderr, code = testbin.Run(t, exec.Command(bin, "exec", "--dir", dir, "dom0", "--", "true"))
	if want := "pedos-lab: the lab in " + dir + " is not running (pedos-lab up --dir " + dir + ")\n"; code != 125 || stdout != "" || stderr != want {
		t.Errorf("exec in a lab that is down: exit %d, stdout %q, stderr %q; want 125 and %q", code, stdout, stderr, want)
	}
}

// TestAttackJSONWhenTheSuiteCannotRun: with --json, stdout holds one JSON
// object even when no row could run, with the reason, and the exit is 1.
func TestAttackJSONWhenTheSuiteCannotRun(t *testing.T) {
	bin := testbin.Path(t, "pedos-lab")
	dir := filepath.Join(t.TempDir(), "attack")
	stdout, stderr, code := testbin.Run(t, exec.Command(bin, "attack", "--dir", dir, "--bin", filepath.Join(dir, "no-programs"), "--only", "S1", "--json"))
	var rep attack.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 1 || rep.Error == "" || rep.Rows == nil || len(rep.Rows) != 0 || !strings.Contains(stderr, rep.Error) {
		t.Errorf("exit %d, stdout %q (%v), stderr %q: want 1 and a report with no rows and the error", code, stdout, err, stderr)
	}
}
