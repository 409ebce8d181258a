package lab

import (
	"bytes"
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
