package frontend

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"pedos.dev/updates/internal/dom0"
)

// A finding is printed with one level: its message already begins with
// its severity (repometa.Finding.String).
func TestPrintResultFindings(t *testing.T) {
	var out bytes.Buffer
	printResult(&out, dom0.Result{Caller: "sys-firewall", Findings: []dom0.Finding{
		{Kind: "key-changed", Message: "notice: metadata for repo vendor is now verified by key 66BE"},
		{Kind: "stale", Message: "warning: metadata for repo vendor is 9 days old"},
		{Kind: "wrong-key", Error: true, Message: "rejected: metadata for repo vendor: repomd.xml is signed by key 642D"},
		{Kind: "withheld", Message: "a message without a level"},
	}})
	want := `==> dom0 checked the delivery from sys-firewall: 0 file(s), 0 bytes
    notice: metadata for repo vendor is now verified by key 66BE
    warning: metadata for repo vendor is 9 days old
    error: metadata for repo vendor: repomd.xml is signed by key 642D
    warning: a message without a level
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// The JSON report is ASCII: C1 controls, bidi overrides and every other
// non-ASCII character are \u escapes, and the object decodes unchanged.
func TestWriteJSONIsASCII(t *testing.T) {
	in := map[string]string{"text": "a\u009b[2Jb\u202ec\u00e9\U0001F600\x7f"}
	var out strings.Builder
	writeJSON(&out, in)
	for i, b := range []byte(out.String()) {
		if b >= 0x7f {
			t.Fatalf("byte %#x at %d in %q", b, i, out.String())
		}
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(out.String()), &back); err != nil || back["text"] != in["text"] {
		t.Errorf("decoded %q (%v), want %q", back["text"], err, in["text"])
	}
}

// A disagreement between the verifiers is printed as the security error it
// is (verify.md §1), other rejections with their class first, where a
// verifier gave one (operations.md, "Package rejections").
func TestPrintResultDisagreement(t *testing.T) {
	var out bytes.Buffer
	printResult(&out, dom0.Result{Caller: "sys-firewall", Packages: []dom0.PackageCheck{
		{File: "a-1-1.noarch.rpm", Rejected: "native verifier accepted the package but rpmkeys did not", Kind: "verifiers disagree"},
		{File: "b-1-1.noarch.rpm", Rejected: "package is not signed", Kind: "unsigned"},
		{File: "c-1-1.noarch.rpm", Rejected: "signature in tag 267: signature by key 7FD38467 not trusted", Kind: "untrusted key"},
		{File: "d-1-1.noarch.rpm", Rejected: "not in the signed metadata"},
	}})
	for _, want := range []string{
		"rejected: a-1-1.noarch.rpm: SECURITY ERROR, the two verifiers disagree: native verifier accepted",
		"rejected: b-1-1.noarch.rpm: unsigned: package is not signed\n",
		"rejected: c-1-1.noarch.rpm: untrusted key: signature in tag 267: signature by key 7FD38467 not trusted\n",
		"rejected: d-1-1.noarch.rpm: not in the signed metadata\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
