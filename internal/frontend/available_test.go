package frontend

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"pedos.dev/updates/internal/dom0"
)

func TestParseAvailable(t *testing.T) {
	listing := "hello\t0\t1.1\t1\tnoarch\tpedos-lab\n" +
		"kernel\t2\t6.1.0\t3.fc41\tx86_64\tupdates:testing\n" +
		"evil\x1b]0;x\x07\t0\t1\t1\tnoarch\trepo\n" + // a control character in a name
		"short\t0\t1\t1\tnoarch\n" + // five fields
		"bad\t-1\t1\t1\tnoarch\trepo\n" + // an epoch that is not a number
		"bad\t0\t1/2\t1\tnoarch\trepo\n" + // a version rpm does not allow
		"bad\t0\t1\t1\tno arch\trepo\n" +
		"bad\t0\t1\t1\tnoarch\tre po\n" +
		"Last metadata expiration check: 0:00:01 ago\n"
	updates, malformed, cutShort := parseAvailable([]byte(listing + strings.Repeat("x", 100_000) + "\n"))
	want := []AvailableUpdate{
		{Name: "hello", NEVRA: "hello-1.1-1.noarch", Repo: "pedos-lab"},
		{Name: "kernel", NEVRA: "kernel-2:6.1.0-3.fc41.x86_64", Repo: "updates:testing"},
	}
	// The last line is longer than a bufio.Scanner takes by default.
	if !slices.Equal(updates, want) || malformed != 8 || cutShort {
		t.Errorf("got %+v and %d malformed (cut short: %t), want %+v and 8", updates, malformed, cutShort, want)
	}
	many := strings.Repeat("hello\t0\t1.1\t1\tnoarch\tpedos-lab\n", maxAvailableLines+1)
	if updates, _, cutShort := parseAvailable([]byte(many)); len(updates) != maxAvailableLines || !cutShort {
		t.Errorf("%d lines: kept %d, cut short: %t; want %d kept and cut short", maxAvailableLines+1, len(updates), cutShort, maxAvailableLines)
	}
}

// The listing is capped: an UpdateVM cannot fill dom0's memory with it,
// and the call still reads all it sends.
func TestCappedBuffer(t *testing.T) {
	var b cappedBuffer
	line := strings.Repeat("x", 1000) + "\n"
	for range maxListingBytes/len(line) + 10 {
		if n, err := io.WriteString(&b, line); n != len(line) || err != nil {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	if b.buf.Len() != maxListingBytes || !b.dropped {
		t.Errorf("kept %d bytes (dropped: %t), want %d", b.buf.Len(), b.dropped, maxListingBytes)
	}
}

// --check-only --json lists the updates the UpdateVM reported, checked for
// form; a line not in form is counted in a warning, never echoed.
func TestRunCheckOnlyListsUpdates(t *testing.T) {
	tr := newTestRun(t, func(_ []string, stdout, stderr io.Writer) int {
		fmt.Fprint(stdout, "hello\t0\t1.1\t1\tnoarch\tpedos-lab\nevil\x1b[2J\t0\t1\t1\tnoarch\trepo\n")
		fmt.Fprintln(stderr, "hello.noarch 1.1-1 pedos-lab")
		return ExitUpdatesAvailable
	})
	if code := tr.run(t, "--check-only", "--json"); code != ExitUpdatesAvailable {
		t.Fatalf("exit %d, want 100; stderr:\n%s", code, tr.stderr)
	}
	rep := decodeOneReport(t, tr.stdout.String())
	want := []AvailableUpdate{{Name: "hello", NEVRA: "hello-1.1-1.noarch", Repo: "pedos-lab"}}
	if !slices.Equal(rep.Available, want) {
		t.Errorf("available: %+v, want %+v", rep.Available, want)
	}
	// The update log keeps the count, not the UpdateVM's list, and says
	// that this was a check, not an upgrade.
	if log, err := os.ReadFile(tr.config.Path(dom0.LogPath)); err != nil || !strings.Contains(string(log), `"available_count":1`) || strings.Contains(string(log), "hello-1.1-1") ||
		!strings.Contains(string(log), `"action":"upgrade","check_only":true,`) {
		t.Errorf("the update log's record of the check: %v\n%s", err, log)
	}
	stderr := tr.stderr.String()
	if !strings.Contains(stderr, "sys-test's list of updates had 1 line(s) that are not NAME EPOCH VERSION RELEASE ARCH REPO") ||
		!strings.Contains(stderr, "Updates are available for dom0: 1 package(s)") || strings.Contains(stderr, "evil") ||
		strings.Contains(stderr, "only the beginning") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// Updates dnf reports with no list for scripts (the UpdateVM's repoquery
// failed): exit 100 stands, JSON says "available": [] rather than leaving
// the key out, and the person is not told "0 package(s)".
func TestRunCheckOnlyEmptyList(t *testing.T) {
	tr := newTestRun(t, func(_ []string, _, stderr io.Writer) int {
		fmt.Fprintln(stderr, "warning: listing the updates with dnf repoquery failed (exit 1, <nil>)")
		return ExitUpdatesAvailable
	})
	if code := tr.run(t, "--check-only", "--json"); code != ExitUpdatesAvailable {
		t.Fatalf("exit %d, want 100; stderr:\n%s", code, tr.stderr)
	}
	if rep := decodeOneReport(t, tr.stdout.String()); rep.Available == nil || len(rep.Available) != 0 {
		t.Errorf("JSON %s, want \"available\": []", tr.stdout.String())
	}
	if stderr := tr.stderr.String(); strings.Contains(stderr, "0 package(s)") || !strings.Contains(stderr, "it listed none for scripts") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// A list longer than the front end keeps is said to be cut short, apart
// from any malformed lines (none here).
func TestRunCheckOnlyLongList(t *testing.T) {
	tr := newTestRun(t, func(_ []string, stdout, _ io.Writer) int {
		for i := range maxAvailableLines + 1 {
			fmt.Fprintf(stdout, "pkg%d\t0\t1.1\t1\tnoarch\tpedos-lab\n", i)
		}
		return ExitUpdatesAvailable
	})
	if code := tr.run(t, "--check-only"); code != ExitUpdatesAvailable {
		t.Fatalf("exit %d, want 100; stderr:\n%s", code, tr.stderr)
	}
	stderr := tr.stderr.String()
	if !strings.Contains(stderr, "sys-test's list of updates is longer than 20000 lines or 4 MiB: only the beginning is listed") ||
		strings.Contains(stderr, "that are not NAME") || !strings.Contains(stderr, "20000 package(s)") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// Whatever the UpdateVM lists, what reaches the report is in form.
func FuzzParseAvailable(f *testing.F) {
	f.Add([]byte("hello\t0\t1.1\t1\tnoarch\tpedos-lab\n"))
	f.Add([]byte("a\t4294967296\t1\t1\tx\tr\nb\t\t1\t1\tx\tr"))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		updates, malformed, _ := parseAvailable(untrusted)
		if lines := strings.Count(string(untrusted), "\n") + 1; len(updates)+malformed > lines {
			t.Fatalf("%d updates and %d malformed from %d lines", len(updates), malformed, lines)
		}
		for _, u := range updates {
			if !listedName.MatchString(u.Name) || !listedRepo.MatchString(u.Repo) || !strings.HasPrefix(u.NEVRA, u.Name+"-") ||
				strings.ContainsAny(u.NEVRA, "\t\n /") {
				t.Fatalf("%q: reported %+v", untrusted, u)
			}
		}
	})
}
