package frontend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/repometa"
)

// A finding is printed with one level, its severity, as verify.md's
// "Results" write it: its message already begins with it
// (repometa.Finding.String).
func TestPrintResultFindings(t *testing.T) {
	var out bytes.Buffer
	printResult(&out, dom0.Result{Caller: "sys-firewall", Findings: []dom0.Finding{
		{Kind: "key-changed", Message: "notice: metadata for repo vendor is now verified by key 66BE"},
		{Kind: "stale", Message: "warning: metadata for repo vendor is 9 days old"},
		{Kind: "wrong-key", Error: true, Message: "rejected: metadata for repo vendor: repomd.xml is signed by key 642D"},
		{Kind: "withheld", Message: "a message without a level"},
		{Kind: "not-verifiable", Repo: "extras", Message: "warning: freshness: not verifiable for repo extras (no metadata key pinned in updates.conf)"},
		{Kind: "not-verifiable", Package: "x-1-1.noarch.rpm", Message: "notice: x-1-1.noarch.rpm is in no signed metadata; it can only come from repo extras"},
	}})
	want := `==> dom0 checked the delivery from sys-firewall: 0 file(s), 0 bytes
    notice: metadata for repo vendor is now verified by key 66BE
    warning: metadata for repo vendor is 9 days old
    rejected: metadata for repo vendor: repomd.xml is signed by key 642D
    warning: a message without a level
    warning: freshness: not verifiable for repo extras (no metadata key pinned in updates.conf): freeze, rollback and withheld updates from it go undetected (M1–M9); pin its metadata key in /etc/pedos/updates.conf (repo.extras.metadata_key)
    notice: x-1-1.noarch.rpm is in no signed metadata; it can only come from repo extras
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// A value that cannot be encoded still gives stdout one JSON object, which
// says so.
func TestWriteJSONCannotEncode(t *testing.T) {
	var out strings.Builder
	writeJSON(&out, map[string]any{"c": make(chan int)})
	var back map[string]string
	if err := json.Unmarshal([]byte(out.String()), &back); err != nil || back["error"] != "the report could not be encoded" {
		t.Errorf("wrote %q (%v), want one JSON object saying the report could not be encoded", out.String(), err)
	}
}

// A disagreement between the verifiers is printed as the security error it
// is (verify.md §1), other rejections with their class first, where a
// verifier gave one (operations.md, "Package rejections").
func TestPrintResultDisagreement(t *testing.T) {
	requirePrinted(t, dom0.Result{Caller: "sys-firewall", Packages: []dom0.PackageCheck{
		{File: "a-1-1.noarch.rpm", Rejected: "native verifier accepted the package but rpmkeys did not", Kind: "verifiers disagree"},
		{File: "b-1-1.noarch.rpm", Rejected: "package is not signed", Kind: "unsigned"},
		{File: "c-1-1.noarch.rpm", Rejected: "signature in tag 267: signature by key 7FD38467 not trusted", Kind: "untrusted key"},
		{File: "d-1-1.noarch.rpm", Rejected: "not in the signed metadata"},
	}},
		"rejected: a-1-1.noarch.rpm: SECURITY ERROR, the two verifiers disagree: native verifier accepted",
		"rejected: b-1-1.noarch.rpm: unsigned: package is not signed\n",
		"rejected: c-1-1.noarch.rpm: untrusted key: signature in tag 267: signature by key 7FD38467 not trusted\n",
		"rejected: d-1-1.noarch.rpm: not in the signed metadata\n")
}

// An UpdateVM chooses how many files it sends (up to max_files): the first
// maxRejectedLines refusals are named, then their count; verified packages
// are all named.
func TestPrintResultBoundsRejections(t *testing.T) {
	res := dom0.Result{Caller: "sys-firewall", Packages: []dom0.PackageCheck{{File: "ok-1-1.noarch.rpm", OK: true, NEVRA: "ok-1-1.noarch", Signer: "K"}}}
	for i := range 4090 {
		res.Packages = append(res.Packages, dom0.PackageCheck{File: fmt.Sprintf("a%04d.rpm", i), Rejected: "not an RPM", Kind: "malformed"})
		// Signed packages each earning a finding (old builds from an archive) are bounded too.
		res.Findings = append(res.Findings, dom0.Finding{Kind: "extraneous", Package: fmt.Sprintf("b%04d.rpm", i), Error: true, Message: "rejected: not listed"})
	}
	res.Findings = append(res.Findings, dom0.Finding{Kind: "stale", Repo: "vendor", Message: "warning: repository stale"})
	var out bytes.Buffer
	printResult(&out, res)
	if n := strings.Count(out.String(), "    rejected: a"); n != maxRejectedLines {
		t.Errorf("%d rejected lines, want %d", n, maxRejectedLines)
	}
	want := fmt.Sprintf("    … and %d more rejected (--json and %s list every one)\n", 4090-maxRejectedLines, dom0.LogPath)
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "verified: ok-1-1.noarch") {
		t.Errorf("output lacks %q or the verified package:\n%.2000s", want, out.String())
	}
	findings := fmt.Sprintf("    … and %d more findings about packages (--json and %s list every one)\n", 4090-maxRejectedLines, dom0.LogPath)
	if n := strings.Count(out.String(), "rejected: not listed"); n != maxRejectedLines || !strings.Contains(out.String(), findings) ||
		!strings.Contains(out.String(), "warning: repository stale") {
		t.Errorf("%d package findings shown, want %d, then %q, and the repository's finding:\n%.2000s", n, maxRejectedLines, findings, out.String())
	}
}

// requirePrinted requires printResult's output for res to hold every want.
func requirePrinted(t *testing.T, res dom0.Result, wants ...string) {
	t.Helper()
	var out bytes.Buffer
	printResult(&out, res)
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// A repository's age is the one dom0's freeze check judged, against its
// time floor, not the distance to dom0's clock (set back here by 30
// days), and it reads as people write ages.
func TestPrintResultFreshnessAge(t *testing.T) {
	finished := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	stamp := finished.Add(30 * 24 * time.Hour)
	requirePrinted(t, dom0.Result{Caller: "sys-firewall", Finished: finished, Freshness: []repometa.RepoSummary{
		{Repo: "vendor", Status: "fresh", Revision: 7, Time: stamp, AgeSeconds: 7200},
		{Repo: "extras", Status: "stale", Time: stamp, AgeSeconds: 302400},
		{Repo: "local", Status: "not-verifiable"},
	}},
		"    freshness: repo vendor: fresh, revision 7, 2 h old\n",
		"    freshness: repo extras: stale, 3.5 days old\n",
		"    freshness: repo local: not-verifiable\n")
}

// The final line names the cause in brief: the first rejected package's
// class and file, or the first rejecting finding's kind and repository.
func TestRefusalCause(t *testing.T) {
	for _, tc := range []struct {
		res  dom0.Result
		want string
	}{
		{dom0.Result{Error: "keyring: no such file"}, "dom0 refused the delivery from sys-firewall: keyring: no such file;"},
		{dom0.Result{Error: "2 of 3 packages were rejected", Packages: []dom0.PackageCheck{
			{File: "a-1-1.noarch.rpm", OK: true}, {File: "b-1-1.noarch.rpm", Kind: "unsigned"}, {File: "c-1-1.noarch.rpm"}}},
			"dom0 refused the delivery from sys-firewall (unsigned: b-1-1.noarch.rpm): 2 of 3 packages were rejected;"},
		{dom0.Result{Error: "the delivery does not match the newest signed repository metadata", Findings: []dom0.Finding{
			{Kind: "stale", Repo: "vendor", Message: "warning: metadata for repo vendor is 9 days old"},
			{Kind: "withheld", Repo: "vendor", Package: "hello-2.0-1.noarch", Error: true, Message: "rejected: update hello-2.0-1.noarch …"},
			{Kind: "rollback", Repo: "extras", Error: true, Message: "rejected: metadata for repo extras is older …"}}},
			"dom0 refused the delivery from sys-firewall (withheld, repo vendor): the delivery does not match"},
		{dom0.Result{Error: "the freshness checks (signed metadata, installed packages) refuse the delivery (rollback): …", Findings: []dom0.Finding{
			{Kind: "rollback", Repo: "extras", Error: true}}},
			"dom0 refused the delivery from sys-firewall (rollback, repo extras): the freshness checks (signed metadata, installed packages) refuse the delivery (rollback): …; nothing was installed and the cached repository is unchanged. What to do: the UpdateVM or its mirror serves an older snapshot"},
		{dom0.Result{Error: "bad request", Findings: []dom0.Finding{{Kind: "bad-request", Error: true}}},
			"dom0 refused the delivery from sys-firewall (bad-request): bad request;"},
		// An older build beside a downgrade: the downgrade is named (M8), not a replay.
		{dom0.Result{Error: "the delivery does not match", Findings: []dom0.Finding{
			{Kind: "older-build", Repo: "updates", Package: "hello-1.0-1.noarch", Error: true},
			{Kind: "downgrade", Package: "libfoo-1.0-1.noarch", Error: true}}},
			"dom0 refused the delivery from sys-firewall (downgrade, package libfoo-1.0-1.noarch): the delivery does not match; nothing was installed and the cached repository is unchanged. What to do: the UpdateVM's dnf chose a build older than the installed one"},
	} {
		if got := refusal("sys-firewall", tc.res, false).Error(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("got %q, want it to begin %q", got, tc.want)
		}
	}
	// --clean emptied the cached repository before the delivery: not "unchanged".
	cleaned := refusal("sys-firewall", dom0.Result{Error: "bad request"}, true).Error()
	if want := "dom0 refused the delivery from sys-firewall: bad request; nothing was installed and the cached repository stays as --clean left it, empty"; cleaned != want {
		t.Errorf("after --clean: %q, want %q", cleaned, want)
	}
}

// A delivery the unpacker refused was never checked: the report says so,
// not "0 file(s), 0 bytes" (which reads as an empty delivery), while a
// refusal of an empty delivery by its metadata still lists its findings.
func TestPrintResultRefusedBeforeChecking(t *testing.T) {
	var out strings.Builder
	printResult(&out, dom0.Result{Caller: "sys-firewall", Packages: []dom0.PackageCheck{},
		Error: "the unpacker refused the stream: a name that breaks the receiver's name rules (EILSEQ)"})
	if want := "==> dom0 refused the delivery from sys-firewall as a whole, before a verdict on each package\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	out.Reset()
	printResult(&out, dom0.Result{Caller: "sys-firewall", Findings: []dom0.Finding{{Kind: "missing-metadata", Repo: "updates", Error: true, Message: "no repomd.xml"}}})
	if !strings.HasPrefix(out.String(), "==> dom0 checked the delivery from sys-firewall: 0 file(s), 0 bytes\n") {
		t.Errorf("a metadata refusal of an empty delivery: %q", out.String())
	}
}
