package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// C5 and the parser's rule that a line reads as it acts: a character that
// hides what a line says is refused wherever it is, also in a comment
// (where nothing else would fail) and as the line's first character, and
// the error names it.
func TestMisleadingCharacterAnywhere(t *testing.T) {
	for _, line := range []string{
		"# a comment\u2028s * @anyvm dom0 allow", // line separator: space, not control
		"# a comment\x7f",                        // DEL
		"# a comment \u009b2K",                   // C1 CSI: control, not space
		"# a comment\u00a0",                      // no-break space
		"\u00a0# a comment",                      // first character
		"\x1b[2K# a comment",
	} {
		_, err := parseText("bad.policy", []byte("# fine\n"+line+"\n"))
		if err == nil || !strings.Contains(err.Error(), "bad.policy:2: character U+") || !strings.Contains(err.Error(), "is not allowed") {
			t.Errorf("%q: got %v, want the character refused at bad.policy:2", line, err)
		}
	}
}

// C4: an argument is "+" and at most 64 characters of its own; the "+" is
// not one of them.
func TestRuleArgumentOf64Characters(t *testing.T) {
	arg := strings.Repeat("a", 64)
	pol, err := parseText("p", []byte("s +"+arg+" @anyvm @anyvm allow\n"))
	if err != nil {
		t.Fatalf("an argument of 64 characters: %v", err)
	}
	domains, _ := ParseDomains("d", []byte("a\nb\n"))
	if d := pol.Evaluate(Request{Source: "a", Target: "b", Service: "s", Argument: arg}, domains); !d.Allow {
		t.Errorf("the rule for an argument of 64 characters does not match it: %+v", d)
	}
}

// Including one file twice, from the same file or from two, is no cycle:
// a file is in the include chain only while it is being read.
func TestIncludeTwiceIsNoCycle(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"10-a.policy": "!include common\n!include common\n",
		"20-b.policy": "!include common\n",
		"common":      "s * @anyvm @anyvm allow\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.rules) != 3 {
		t.Errorf("%d rules, want 3", len(pol.rules))
	}
}

// A file that includes itself directly names no other file in the cycle.
func TestDirectSelfIncludeMessage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.policy"), []byte("!include a.policy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if want := "policy: " + dir + "/a.policy:1: include cycle: " + dir + "/a.policy includes itself"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// Policy file names are [0-9a-z_.-] (policyFiles): each of those
// characters is taken.
func TestPolicyFileNameCharacters(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "10_a-b.c.policy"), []byte("s * @anyvm @anyvm allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pol, err := Load(dir); err != nil || len(pol.rules) != 1 {
		t.Errorf("10_a-b.c.policy: %v", err)
	}
}

// A policy file of exactly the size cap is read (TestLoadSizeCap: one
// byte more is refused).
func TestLoadAtTheSizeCap(t *testing.T) {
	dir := t.TempDir()
	data := []byte("s * @anyvm @anyvm allow\n#")
	data = append(data, make([]byte, maxConfigFileBytes-len(data))...)
	for i := len("s * @anyvm @anyvm allow\n#"); i < len(data); i++ {
		data[i] = 'x'
	}
	if err := os.WriteFile(filepath.Join(dir, "10-big.policy"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if pol, err := Load(dir); err != nil || len(pol.rules) != 1 {
		t.Errorf("a policy file of %d bytes: %v", len(data), err)
	}
}

// Which tokens a rule takes (docs/qrexec-policy.md): @tag: and @type: take
// one character or more of their own sets, @dispvm:NAME a domain name.
func TestRuleTokens(t *testing.T) {
	for _, c := range []struct {
		source string
		ok     bool
	}{
		{"@tag:x", true}, {"@tag:a_b.c-d", true}, {"@tag:a$", false},
		{"@type:X", true}, {"@type:Template_VM", true}, {"@type:", false}, {"@type:$VM", false}, {"@type:a.b", false},
		{"@dispvm:dvm-tpl", true}, {"@dispvm:1bad", false}, {"@dispvm:", false},
	} {
		_, err := parseText("p", []byte("s * "+c.source+" @anyvm allow\n"))
		if (err == nil) != c.ok {
			t.Errorf("source %q: %v, want ok=%t", c.source, err, c.ok)
		}
	}
}

// A rule for target @dispvm:NAME matches a call to @dispvm:NAME, and a
// call to @dispvm from a domain whose default_dispvm is NAME (as in
// Qubes); no other.
func TestDispVMOfTarget(t *testing.T) {
	pol, err := parseText("p", []byte("s * @anyvm @dispvm:dvm-tpl allow\n"))
	if err != nil {
		t.Fatal(err)
	}
	domains, err := ParseDomains("d", []byte("dvm-tpl\nother-tpl\nwork default_dispvm=dvm-tpl\npersonal default_dispvm=other-tpl\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		source, target string
		want           string // the decision's target, "" for a denial
	}{
		{"work", "@dispvm:dvm-tpl", "@dispvm:dvm-tpl"},
		{"personal", "@dispvm:dvm-tpl", "@dispvm:dvm-tpl"},
		{"work", "@dispvm", "@dispvm:dvm-tpl"},
		{"personal", "@dispvm", ""},
		{"work", "@dispvm:other-tpl", ""},
		{"work", "dvm-tpl", ""},
	} {
		d := pol.Evaluate(Request{Source: c.source, Target: c.target, Service: "s"}, domains)
		if got := map[bool]string{true: d.Target}[d.Allow]; got != c.want {
			t.Errorf("%s → %s: allow %t to %q (%s), want %q", c.source, c.target, d.Allow, d.Target, d.Reason, c.want)
		}
	}
}

// The daemon identifies a vsock caller by its CID alone, so cid= is
// strict: a decimal number of 32 bits, not 0 (the hypervisor), 2 (the
// host) or 4294967295 (VMADDR_CID_ANY); 1 is allowed for tests; a domain
// without one is never found by a CID. Every field is checked, and an
// error names its line.
func TestParseDomainsFields(t *testing.T) {
	d, err := ParseDomains("d", []byte("one cid=1\nnineteen cid=19\ntop cid=4294967294\nnocid\n"))
	if err != nil {
		t.Fatal(err)
	}
	for cid, want := range map[uint32]string{1: "one", 19: "nineteen", 4294967294: "top"} {
		if name, ok := d.ByCID(cid); !ok || name != want {
			t.Errorf("ByCID(%d) = %q, %t; want %s", cid, name, ok, want)
		}
	}
	if name, ok := d.ByCID(0); ok {
		t.Errorf("ByCID(0) = %q: a domain without a cid is found by one", name)
	}
	for _, bad := range []string{"vm cid=4294967295", "vm cid=4294967296", "vm cid=4294967299", "vm cid=0x10", "vm template=1bad", "vm tags=a$"} {
		if _, err := ParseDomains("d", []byte("first\n"+bad+"\n")); err == nil || !strings.HasPrefix(err.Error(), "d:2: ") {
			t.Errorf("%q: %v, want an error at d:2", bad, err)
		}
	}
	if _, err := ParseDomains("d", []byte("vm junk\n")); err == nil || err.Error() != `d:1: "junk" is not KEY=VALUE` {
		t.Errorf("a word without '=': %v", err)
	}
	good, err := ParseDomains("d", []byte("vm type=X tags=a_b,c.d,e-f template=dvm-tpl\n"))
	if err != nil {
		t.Fatal(err)
	}
	if vm, _ := good.Lookup("vm"); vm.Type != "X" || strings.Join(vm.Tags, " ") != "a_b c.d e-f" || vm.Template != "dvm-tpl" {
		t.Errorf("vm: %+v", vm)
	}
}

// A domains line must read as it acts, as a policy line must: no control
// character (a carriage return shows a live line as a comment, or a
// comment as a live line), no whitespace beyond ASCII, no byte-order mark;
// and dom0 is nobody's template.
func TestParseDomainsRefusesMisleadingLines(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"work agent=unix:/run/x.sock\r# retired\n", "d:1: character U+000D is not allowed"},
		{"personal\n#\rsys-firewall tags=updatevm\n", "d:2: character U+000D is not allowed"},
		{"work\v\n", "d:1: character U+000B is not allowed"},
		{"work tags=a\r\r\n", "d:1: character U+000D is not allowed"},
		{"work\u00a0tags=a\n", "d:1: character U+00A0 is not allowed"},
		{"\ufeff# domains\nwork\n", "d:1: character U+FEFF, a byte-order mark, is not allowed"},
		{"work tags=\xff\n", "d:1: not valid UTF-8"},
		{"d1 type=DispVM template=dom0\n", `d:1: invalid template "dom0"`},
	} {
		if _, err := ParseDomains("d", []byte(c.text)); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %s…", c.text, err, c.want)
		}
	}
	d, err := ParseDomains("d", []byte("# comment\r\n  work tags=a\t\r\n\n"))
	if err != nil {
		t.Fatalf("CRLF, indentation and a trailing tab: %v", err)
	}
	if work, ok := d.Lookup("work"); !ok || strings.Join(work.Tags, ",") != "a" {
		t.Errorf("work: %+v, %t", work, ok)
	}
}

// A domains line may be up to 64 KiB, its newline not counted, and the
// last one needs none; a longer one fails the file, saying so.
func TestParseDomainsLineLength(t *testing.T) {
	line := func(n int, end string) []byte {
		return []byte("vm agent=" + strings.Repeat("x", n-len("vm agent=")) + end)
	}
	for _, end := range []string{"\n", "\r\n", ""} {
		if _, err := ParseDomains("d", line(maxDomainsLine, end)); err != nil {
			t.Errorf("a line of %d bytes and %q: %v", maxDomainsLine, end, err)
		}
		if _, err := ParseDomains("d", line(maxDomainsLine+1, end)); err == nil || err.Error() != "d:1: line longer than 65536 bytes" {
			t.Errorf("a line of %d bytes and %q: %v", maxDomainsLine+1, end, err)
		}
	}
}

// CheckRequested names the field that breaks its rule (qrexec.md, C4; the rules' edges are
// in TestNames' table); Quoted cuts after 64 bytes with a mark.
func TestCheckRequestedAndQuoted(t *testing.T) {
	for _, c := range []struct{ target, service, argument, want string }{
		{"work", "s", "a", ""},
		{"@anyvm", "s", "a", "invalid target"},
		{"work", "a/b", "a", "invalid service name"},
		{"work", "s", "a b", "invalid service argument"},
	} {
		err := CheckRequested(c.target, c.service, c.argument)
		if (c.want == "") != (err == nil) || err != nil && !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("CheckRequested(%q, %q, %q) = %v, want %q", c.target, c.service, c.argument, err, c.want)
		}
	}
	if q := Quoted(strings.Repeat("q", 64)); q != `"`+strings.Repeat("q", 64)+`"` {
		t.Errorf("Quoted of 64 bytes: %s", q)
	}
	if q := Quoted(strings.Repeat("q", 65)); q != `"`+strings.Repeat("q", 64)+`"…(65 bytes)` {
		t.Errorf("Quoted of 65 bytes: %s", q)
	}
}

// notify=no and autostart=no say no (qrexec.md "Policy": allow takes notify=
// and autostart=): a "no" read as "yes" would start a target domain the
// policy said must not be started.
func TestEvaluateParamsNo(t *testing.T) {
	pol, err := parseText("p", []byte("s * @anyvm @anyvm allow notify=no autostart=no\n"))
	if err != nil {
		t.Fatal(err)
	}
	domains, _ := ParseDomains("d", []byte("a\nb\n"))
	if d := pol.Evaluate(Request{Source: "a", Target: "b", Service: "s"}, domains); !d.Allow || d.Notify || d.Autostart {
		t.Errorf("allow notify=no autostart=no: %+v; want allowed, no notify, no autostart", d)
	}
}
