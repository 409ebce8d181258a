package lab

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// status prints each process of a domain on one line of its own, with
// what a terminal would act on escaped: root in the UpdateVM chooses its
// processes' command lines, and status prints them on the host.
func TestStatusPrintEscapesCommands(t *testing.T) {
	st := Status{Dir: "/lab", Domains: []DomainStatus{{Name: "sys-firewall", Running: true, Processes: []ProcessInfo{
		{PID: 7, Command: "sleep\x1b]0;owned\x07 1\ndomain dom0: stopped \u202e\xff"},
		{PID: 8, Command: "dnf -y --downloadonly upgrade 'hello>=1.0'"},
	}}}}
	var out bytes.Buffer
	st.Print(&out)
	want := []string{
		`        7  sleep\x1b]0;owned\a 1\ndomain dom0: stopped \u202e\xff`,
		`        8  dnf -y --downloadonly upgrade 'hello>=1.0'`,
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) != 6 || lines[3] != want[0] || lines[4] != want[1] {
		t.Errorf("status printed\n%s\nwant the process lines\n%s", out.String(), strings.Join(want, "\n"))
	}
}

// status --json escapes what encoding/json leaves raw: DEL, the C1
// controls, bidi overrides, a character above U+FFFF that is not
// printable; the result is the same JSON.
func TestStatusPrintJSONEscapesCommands(t *testing.T) {
	command := "sleep\x7f\u009b31m\u202e\U000e0001 1 \x1b"
	st := Status{Dir: "/lab", Domains: []DomainStatus{{Name: "sys-firewall", Running: true, Processes: []ProcessInfo{{PID: 7, Command: command}}}}}
	var out bytes.Buffer
	if err := st.PrintJSON(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`sleep\u007f\u009b31m\u202e\udb40\udc01 1 \u001b`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status --json:\n%s\nwant %s", out.String(), want)
		}
	}
	var back Status
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Domains[0].Processes[0].Command != command {
		t.Errorf("the escaped JSON reads back as %+v, %v", back, err)
	}
}
