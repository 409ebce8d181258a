package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const testDomains = `# test domains
work          tags=personal,updatevm
sys-firewall  type=AppVM tags=updatevm default_dispvm=dvm-tpl
fedora        type=TemplateVM
dvm-tpl
disp123       type=DispVM template=dvm-tpl
tpl-child     type=AppVM template=dvm-tpl
dom0          tags=admin
remote        agent=exec:ssh -o BatchMode=yes remote qrexec-agent --stdio
`

const testPolicyText = `# a comment, then rules; the first match wins
test.Deny       *         @anyvm           @anyvm            deny
test.Arg        +allowed  work             dom0              allow
test.Arg        +         work             dom0              allow user=root
test.Arg        *         work             dom0              deny
test.Tag        *         @tag:updatevm    @tag:personal     allow
test.Type       *         @anyvm           @type:TemplateVM  allow
test.Default    *         work             @default          allow target=sys-firewall
test.NoTarget   *         work             @default          deny
test.Redirect   *         work             fedora            allow target=dom0
test.Ask        *         @anyvm           @anyvm            ask default_target=fedora
test.Disp       *         @anyvm           @dispvm           allow
test.DispOf     *         @dispvm:dvm-tpl  @adminvm          allow
test.Admin      *         dom0             @anyvm            allow
test.AdminTag   *         @anyvm           @tag:admin        allow
test.Any        *         @anyvm           @anyvm            allow notify=yes autostart=no
PedOS.ReceiveUpdates * sys-firewall dom0 allow
PedOS.ReceiveUpdates * @anyvm       @anyvm deny
*               *         @anyvm           dom0              deny
test.DispDom0   *         @anyvm           @anyvm            allow target=@dispvm:dom0
`

// testPolicy is testPolicyText with testDomains.
func testPolicy(t *testing.T) (*Policy, *Domains) {
	t.Helper()
	domains, err := ParseDomains("domains.conf", []byte(testDomains))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := parseText("test.policy", []byte(testPolicyText))
	if err != nil {
		t.Fatal(err)
	}
	return pol, domains
}

func TestEvaluate(t *testing.T) {
	pol, domains := testPolicy(t)
	for _, c := range []struct {
		source, target, service, argument string
		want                              string // "allow TARGET [user=U]" or "deny"
		rule                              int    // the deciding line, 0 for none
	}{
		{"work", "fedora", "test.Deny", "", "deny", 2},
		{"work", "dom0", "test.Arg", "allowed", "allow dom0", 3},
		{"work", "@adminvm", "test.Arg", "allowed", "allow dom0", 3},
		{"work", "dom0", "test.Arg", "", "allow dom0 user=root", 4},
		{"work", "dom0", "test.Arg", "other", "deny", 5},
		{"sys-firewall", "dom0", "test.Arg", "allowed", "deny", 19},
		{"sys-firewall", "work", "test.Tag", "", "allow work", 6},
		{"sys-firewall", "fedora", "test.Tag", "", "deny", 0},
		{"work", "fedora", "test.Type", "", "allow fedora", 7},
		{"work", "sys-firewall", "test.Type", "", "deny", 0},
		{"work", "@default", "test.Default", "", "allow sys-firewall", 8},
		{"work", "sys-firewall", "test.Default", "", "deny", 0},
		{"work", "@default", "test.NoTarget", "", "deny", 9},
		{"work", "fedora", "test.Redirect", "", "allow dom0", 10},
		{"work", "fedora", "test.Ask", "", "deny", 11},
		{"sys-firewall", "@dispvm", "test.Disp", "", "allow @dispvm:dvm-tpl", 12},
		// @dispvm matches only a call to @dispvm, as in Qubes.
		{"sys-firewall", "@dispvm:dvm-tpl", "test.Disp", "", "deny", 0},
		{"work", "@dispvm", "test.Disp", "", "deny", 12},
		{"work", "@dispvm:dom0", "test.Any", "", "deny", 16},
		{"work", "fedora", "test.DispDom0", "", "deny", 20},
		{"disp123", "dom0", "test.DispOf", "", "allow dom0", 13},
		{"work", "dom0", "test.DispOf", "", "deny", 19},
		// @dispvm:NAME as a source is a disposable domain of NAME, not
		// any domain whose template= says NAME.
		{"tpl-child", "dom0", "test.DispOf", "", "deny", 19},
		{"dom0", "work", "test.Admin", "", "allow work", 14},
		{"work", "work", "test.Admin", "", "deny", 0},
		// dom0 is matched only by name, though domains.conf tags it.
		{"work", "dom0", "test.AdminTag", "", "deny", 19},
		{"work", "fedora", "test.Any", "", "allow fedora", 16},
		{"dom0", "fedora", "test.Any", "", "deny", 0},
		{"work", "dom0", "test.Any", "", "deny", 19},
		{"work", "no-such-vm", "test.Any", "", "deny", 16},
		// @anyvm matches @default too (as in Qubes); allow needs target=.
		{"work", "@default", "test.Any", "", "deny", 16},
		{"sys-firewall", "dom0", "PedOS.ReceiveUpdates", "0123abcd", "allow dom0", 17},
		{"work", "dom0", "PedOS.ReceiveUpdates", "0123abcd", "deny", 19}, // C1
		{"work", "sys-firewall", "PedOS.ReceiveUpdates", "", "deny", 18},
		{"work", "dom0", "unknown.Service", "", "deny", 19},
		{"work", "fedora", "unknown.Service", "", "deny", 0},
	} {
		d := pol.Evaluate(Request{Source: c.source, Target: c.target, Service: c.service, Argument: c.argument}, domains)
		got := "deny"
		if d.Allow {
			got = "allow " + d.Target
			if d.User != "" {
				got += " user=" + d.User
			}
		}
		wantRule := ""
		if c.rule != 0 {
			wantRule = fmt.Sprintf("test.policy:%d", c.rule)
		}
		if got != c.want || d.Rule != wantRule {
			t.Errorf("%s → %s %s+%s: got %q by %q (%s), want %q by %q", c.source, c.target, c.service, c.argument, got, d.Rule, d.Reason, c.want, wantRule)
		}
	}
}

// TestEvaluateDenyReasons: a denied call's log line says why it was
// denied, not only that no domain of that name exists.
func TestEvaluateDenyReasons(t *testing.T) {
	pol, domains := testPolicy(t)
	for _, c := range []struct{ source, target, service, reason string }{
		{"work", "@default", "test.Any", "allow for @default needs target="},
		{"work", "@dispvm", "test.Disp", "@dispvm: work has no default_dispvm"},
		{"work", "fedora", "test.DispDom0", "dom0 is no template for disposable domains"},
		{"work", "no-such-vm", "test.Any", `no such domain "no-such-vm"`},
		{"work", "fedora", "test.Ask", "ask: no one to ask here, treated as deny"},
	} {
		d := pol.Evaluate(Request{Source: c.source, Target: c.target, Service: c.service}, domains)
		if d.Allow || d.Reason != c.reason {
			t.Errorf("%s → %s %s: got allow=%t %q, want a denial %q", c.source, c.target, c.service, d.Allow, d.Reason, c.reason)
		}
	}
}

func TestEvaluateParams(t *testing.T) {
	pol, err := parseText("p", []byte("s * @anyvm @anyvm allow notify=yes autostart=yes user=u\nd * @anyvm @anyvm deny notify=yes\n"))
	if err != nil {
		t.Fatal(err)
	}
	domains, _ := ParseDomains("d", []byte("a\nb\n"))
	d := pol.Evaluate(Request{Source: "a", Target: "b", Service: "s"}, domains)
	if !d.Allow || !d.Notify || !d.Autostart || d.User != "u" {
		t.Errorf("allow params: %+v", d)
	}
	if d := pol.Evaluate(Request{Source: "a", Target: "b", Service: "d"}, domains); d.Allow || !d.Notify {
		t.Errorf("deny params: %+v", d)
	}
}

// TestParseErrors: any syntax error fails the whole policy, naming file and
// line (C5).
func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		"s * @anyvm dom0",
		"bad$name * @anyvm dom0 allow",
		"* +x @anyvm dom0 allow",
		"s x @anyvm dom0 allow",
		"s +a$ @anyvm dom0 allow",
		"s +" + strings.Repeat("a", 65) + " @anyvm dom0 allow",
		"s * @default dom0 allow",
		"s * @anyvm @default allow", // as in Qubes: allow for @default needs target=
		"s * @anyvm @dispvm:@tag:x allow",
		"s * @dispvm dom0 allow",
		"s * @anyvm @bogus allow",
		"s * @tag: dom0 allow",
		"s * @anyvm 1bad allow",
		"s * @anyvm dom0 permit",
		"s * @anyvm dom0 deny target=work",
		"s * @anyvm dom0 allow target=@anyvm",
		"s * @anyvm dom0 allow target=@default",
		"s * @anyvm dom0 allow default_target=work",
		"s * @anyvm dom0 allow user=a;b",
		"s * @anyvm dom0 allow notify=maybe",
		"s * @anyvm dom0 allow user=a user=b",
		"s * @anyvm dom0 allow junk",
		// Whitespace an editor does not show as a field break.
		"s * @anyvm vm1\u2028dom0 allow",
		"s * @anyvm\u00a0dom0 allow",
		"s\u3000* @anyvm dom0 allow",
		// Control characters that make a terminal show something else,
		// in a rule or in a comment that would read as a rule.
		"s\v*\v@anyvm\vdom0\vallow",
		"s * @anyvm dom0 deny\rnotify=yes",
		"#\rs * @anyvm dom0 deny",
		"# \x1b[2K s * @anyvm dom0 deny",
		"s * @anyvm dom0 allow\x00",
		"#\x9b1G a comment that a terminal of 8-bit codes would move",
		"\ufeff# a comment behind an editor's byte-order mark",
	} {
		text := "# fine\nok * @anyvm dom0 allow\n" + line + "\n"
		_, err := parseText("bad.policy", []byte(text))
		if err == nil || !strings.Contains(err.Error(), "bad.policy:3:") {
			t.Errorf("%q: got %v, want an error at bad.policy:3", line, err)
		}
	}
}

// TestParseDirectiveErrors: a directive we do not know is named as such,
// whatever its number of words.
func TestParseDirectiveErrors(t *testing.T) {
	for line, want := range map[string]string{
		"!include":                  "policy: bad.policy:1: !include needs exactly one path",
		"!include a b":              "policy: bad.policy:1: !include needs exactly one path",
		"!include-dir":              "policy: bad.policy:1: !include-dir needs exactly one path",
		"!compat-4.0":               `policy: bad.policy:1: unknown directive "!compat-4.0"`,
		"!include-service s +A f":   `policy: bad.policy:1: unknown directive "!include-service"`,
		"!":                         `policy: bad.policy:1: unknown directive "!"`,
		"!include-service s * file": `policy: bad.policy:1: unknown directive "!include-service"`,
	} {
		if _, err := parseText("bad.policy", []byte(line+"\n")); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", line, err, want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	domains, _ := ParseDomains("d", []byte("a\nb\n"))
	decide := func(service string) string {
		t.Helper()
		pol, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		d := pol.Evaluate(Request{Source: "a", Target: "b", Service: service}, domains)
		if d.Allow {
			return "allow"
		}
		return "deny"
	}
	// Byte order of names: "10-" before "20-" before "9-".
	write("20-b.policy", "s1 * @anyvm @anyvm allow\ns2 * @anyvm @anyvm allow\n")
	write("10-a.policy", "s1 * @anyvm @anyvm deny\n")
	write("9-c.policy", "s2 * @anyvm @anyvm deny\ns3 * @anyvm @anyvm allow\n")
	// Skipped: hidden, not .policy.
	write(".hidden.policy", "syntax error\n")
	write("README", "syntax error\n")
	write("30-x.policy~", "syntax error\n")
	if decide("s1") != "deny" || decide("s2") != "allow" || decide("s3") != "allow" {
		t.Error("files not read in byte order of their names")
	}
	// Includes, relative to the policy directory.
	write("sub/inc.policy", "s4 * @anyvm @anyvm allow\n")
	write("sub/dir/1.policy", "s5 * @anyvm @anyvm allow\n")
	write("sub/dir/ignored.txt", "syntax error\n")
	write("05-inc.policy", "!include sub/inc.policy\n!include-dir sub/dir\n")
	if decide("s4") != "allow" || decide("s5") != "allow" {
		t.Error("includes not followed")
	}

	// Each error says "policy:" once, and each place once.
	write("sub/broken.policy", "# ok\nnot a rule\n")
	// Relative to the policy directory, wherever the including file is (as in Qubes).
	write("sub/cycle.policy", "!include 00-err.policy\n")
	write("sub/nested.policy", "!include-dir sub/dir\n!include sub/broken.policy\n")
	for _, c := range []struct{ file, text, want string }{
		{"00-err.policy", "s * @anyvm @anyvm allow\n\nbroken line\n", "DIR/00-err.policy:3: want SERVICE"},
		{"00-err.policy", "!include sub/broken.policy\n", "DIR/00-err.policy:1: !include sub/broken.policy: DIR/sub/broken.policy:2: want SERVICE"},
		{"00-err.policy", "\n!include sub/nested.policy\n", "DIR/00-err.policy:2: !include sub/nested.policy: DIR/sub/nested.policy:2: !include sub/broken.policy: DIR/sub/broken.policy:2: want SERVICE"},
		{"00-err.policy", "!include no-such-file\n", "DIR/00-err.policy:1: !include no-such-file: open DIR/no-such-file: no such file or directory"},
		{"00-err.policy", "!include-dir no-such-dir\n", "DIR/00-err.policy:1: !include-dir no-such-dir: open DIR/no-such-dir: no such file or directory"},
		{"00-err.policy", "!include 00-err.policy\n", "DIR/00-err.policy:1: include cycle: DIR/00-err.policy includes itself"},
		{"00-err.policy", "!include sub/cycle.policy\n", "DIR/sub/cycle.policy:1: include cycle: DIR/00-err.policy includes itself (through DIR/sub/cycle.policy)"},
		{"00-err.policy", "!include-dir .\n", "DIR/00-err.policy:1: include cycle: DIR/00-err.policy includes itself"},
		{"Upper.policy", "", `"DIR/Upper.policy": invalid policy file name`},
		{"a b.policy", "", `"DIR/a b.policy": invalid policy file name`},
		{"bad\x1b[31m\n.policy", "", `"DIR/bad\x1b[31m\n.policy": invalid policy file name`},
	} {
		write(c.file, c.text)
		want := "policy: " + strings.ReplaceAll(c.want, "DIR", dir)
		if _, err := Load(dir); err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(" "+err.Error(), " policy:") != 1 {
			t.Errorf("%s %q: got %v, want an error starting %q, with \"policy:\" once", c.file, c.text, err, want)
		}
		os.Remove(filepath.Join(dir, c.file))
	}
}

// TestLoadNestedTooDeep: includes nest at most maxIncludeDepth deep below
// a policy file, and the file one deeper is named with its includer. A
// cycle through a symbolic link is a cycle: relative paths start at the
// policy directory, so the same spelling comes back.
func TestLoadNestedTooDeep(t *testing.T) {
	chain := func(t *testing.T, depth int) string {
		dir := t.TempDir()
		write := func(name, text string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("a.policy", "!include n1\n")
		for i := 1; i < depth; i++ {
			write(fmt.Sprintf("n%d", i), fmt.Sprintf("!include n%d\n", i+1))
		}
		write(fmt.Sprintf("n%d", depth), "s * @anyvm @anyvm allow\n")
		return dir
	}
	if _, err := Load(chain(t, maxIncludeDepth)); err != nil {
		t.Errorf("%d nested includes: %v", maxIncludeDepth, err)
	}
	dir := chain(t, maxIncludeDepth+1)
	_, err := Load(dir)
	want := fmt.Sprintf("policy: %s/n16:1: including %s/n17 nests deeper than 16", dir, dir)
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	dir = t.TempDir()
	if err := os.Symlink(".", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.policy"), []byte("!include link/a.policy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "include cycle: "+dir+"/link/a.policy includes itself") {
		t.Errorf("a cycle through a symbolic link: %v", err)
	}
}

// dom0 is matched only by name (dom0, @adminvm), as in Qubes: a rule for a
// tag or type that dom0 has in domains.conf reaches another domain, never
// dom0, as source or target.
func TestDom0OnlyByName(t *testing.T) {
	domains, err := ParseDomains("domains.conf", []byte("dom0 tags=admin\nwork tags=admin\nother\nadm type=AdminVM\n"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := parseText("test.policy", []byte(`t.Tag  * @tag:admin      @anyvm          allow
t.Tag  * @anyvm         @tag:admin      allow
t.Type * @type:AdminVM  @anyvm          allow
t.Type * @anyvm         @type:AdminVM   allow
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		source, target, service string
		allow                   bool
	}{
		{"work", "other", "t.Tag", true}, {"other", "work", "t.Tag", true},
		{"dom0", "other", "t.Tag", false}, {"other", "dom0", "t.Tag", false}, {"other", "@adminvm", "t.Tag", false},
		{"adm", "other", "t.Type", true}, {"other", "adm", "t.Type", true},
		{"dom0", "other", "t.Type", false}, {"other", "dom0", "t.Type", false},
	} {
		target := c.target
		if target == "dom0" {
			target = "@adminvm" // as the daemon asks
		}
		if d := pol.Evaluate(Request{Source: c.source, Target: target, Service: c.service}, domains); d.Allow != c.allow {
			t.Errorf("%s → %s %s: allow %t (%s %s), want %t", c.source, c.target, c.service, d.Allow, d.Rule, d.Reason, c.allow)
		}
	}
}

// A policy or domains file that is not a regular file fails the policy
// at once (every call refused), never holding calls: a FIFO would block
// its reader until someone wrote to it, /dev/zero would never end.
func TestLoadOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "50-fifo.policy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "50-fifo.policy: not a regular file but a named pipe (FIFO)") {
		t.Errorf("a FIFO in the policy directory: %v", err)
	}
	// A directory's mode letters (d---------) would read as mode 000.
	dirs := t.TempDir()
	if err := os.Mkdir(filepath.Join(dirs, "50-dir.policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dirs); err == nil || !strings.HasSuffix(err.Error(), "50-dir.policy: not a regular file but a directory") {
		t.Errorf("a directory in the policy directory: %v", err)
	}
	zero := t.TempDir()
	if err := os.WriteFile(filepath.Join(zero, "10-zero.policy"), []byte("!include /dev/zero\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(zero); err == nil || !strings.Contains(err.Error(), "/dev/zero: not a regular file but a character device") {
		t.Errorf("an include of /dev/zero: %v", err)
	}
	if _, err := LoadDomains(filepath.Join(dir, "50-fifo.policy")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a FIFO as the domains file: %v", err)
	}
}

// TestLoadSizeCap: a policy file one byte over the cap fails the policy
// (every call refused) rather than being read in part.
func TestLoadSizeCap(t *testing.T) {
	dir := t.TempDir()
	data := append([]byte("#"), make([]byte, maxConfigFileBytes)...)
	if err := os.WriteFile(filepath.Join(dir, "10-big.policy"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("larger than %d bytes", maxConfigFileBytes)) {
		t.Errorf("a policy file of %d bytes: %v", len(data), err)
	}
}

func TestParseDomains(t *testing.T) {
	d, err := ParseDomains("domains.conf", []byte(testDomains))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := d.Lookup("remote"); r.Agent != "exec:ssh -o BatchMode=yes remote qrexec-agent --stdio" {
		t.Errorf("agent= does not take the rest of the line: %q", r.Agent)
	}
	if dom0, _ := d.Lookup("dom0"); dom0.Type != "AdminVM" || len(dom0.Tags) != 1 {
		t.Errorf("dom0: %+v", dom0)
	}
	if got := strings.Join(d.Names(), " "); got != "disp123 dvm-tpl fedora remote sys-firewall tpl-child work" {
		t.Errorf("names: %s", got)
	}
	// Words are separated by any run of spaces and tabs, as in the policy.
	tabs, err := ParseDomains("d", []byte("work\ttags=x,y \t type=TemplateVM\t\nremote\t agent=exec:ssh\tremote  qrexec-agent\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := tabs.Lookup("work"); strings.Join(w.Tags, ",") != "x,y" || w.Type != "TemplateVM" {
		t.Errorf("a line with tabs: %+v", w)
	}
	if r, _ := tabs.Lookup("remote"); r.Agent != "exec:ssh\tremote  qrexec-agent" {
		t.Errorf("agent= after a tab: %q", r.Agent)
	}
	for _, bad := range []string{
		"1vm", "vm$", "vm junk", "vm type=", "vm tags=a,,b", "vm cid=2", "vm cid=x", "vm cid=0",
		"a cid=5\nb cid=5", "vm\nvm", "dom0 cid=4", "dom0 type=AppVM", "vm agent=", "vm default_dispvm=$", "vm default_dispvm=dom0",
		"vm tags=a tags=b", "vm cid=5 cid=6", "vm type=AppVM type=TemplateVM", "vm tags", "dom0 default_dispvm=vm", "dom0 template=vm",
		"vm agent=" + strings.Repeat("x", 70000),
	} {
		if _, err := ParseDomains("d", []byte(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct {
		check func(string) bool
		ok    []string
		bad   []string
	}{
		{ValidService, []string{"a", "PedOS.ReceiveUpdates", "x-y_z.1", strings.Repeat("s", 64), "Z.y_x-w"},
			[]string{"", ".", "..", "a+b", "a/b", "a b", "a;b", "$x", "a\n", strings.Repeat("s", 65), "é"}},
		{ValidArgument, []string{"", "a", "a+b", "0123abcd", strings.Repeat("a", 64), "a_b.c-d+e", "Z"},
			[]string{"a/b", "a b", "$", "`x`", strings.Repeat("a", 65), "a\x00"}},
		{ValidRequestedTarget, []string{"vm", "dom0", "@default", "@adminvm", "@dispvm", "@dispvm:tpl"},
			[]string{"", "@anyvm", "@tag:x", "@dispvm:", "1vm", strings.Repeat("v", 32), "vm/x"}},
		{ValidUser, []string{"root", "user", "DEFAULT", "a.b_c-d", strings.Repeat("u", 32)}, []string{"", "-u", "a:b", "a b", strings.Repeat("u", 33)}},
		{ValidDomainName, []string{"a_b.c-d", "Zed", "v" + strings.Repeat("1", 30)}, []string{"v" + strings.Repeat("1", 31)}},
	} {
		for _, s := range c.ok {
			if !c.check(s) {
				t.Errorf("%q refused", s)
			}
		}
		for _, s := range c.bad {
			if c.check(s) {
				t.Errorf("%q accepted", s)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(testPolicyText))
	f.Add([]byte("!include x\n* * @anyvm dom0 allow target=@dispvm:x user=u\n"))
	domains, err := ParseDomains("d", []byte(testDomains))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pol, err := parseText("fuzz.policy", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "policy: fuzz.policy:") {
				t.Fatalf("error without file and line: %v", err)
			}
			return
		}
		for _, target := range []string{"dom0", "work", "@default", "@dispvm", "@dispvm:dvm-tpl"} {
			d := pol.Evaluate(Request{Source: "sys-firewall", Target: target, Service: "s", Argument: "a"}, domains)
			if d.Allow && d.Target != Dom0 && !strings.HasPrefix(d.Target, "@dispvm:") {
				if _, ok := domains.Lookup(d.Target); !ok {
					t.Fatalf("allowed to a domain that does not exist: %+v", d)
				}
			}
		}
	})
}
