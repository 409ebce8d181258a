package repometa

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// primaryXML wraps package bodies the way createrepo_c writes them.
func primaryXML(declared string, bodies ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="` + declared + `">` + "\n")
	for _, body := range bodies {
		b.WriteString(`<package type="rpm">` + body + "</package>\n")
	}
	b.WriteString("</metadata>\n")
	return b.String()
}

const (
	sum1   = "1d26b57ec72917dcf694e73653ba6e047a4f6fc8063b034cf53f5dbb0666f76d"
	fields = `<name>foo</name><arch>noarch</arch><version epoch="0" ver="1.0" rel="1"/>` +
		`<checksum type="sha256" pkgid="YES">` + sum1 + `</checksum>`
	size = `<size package="1387" installed="16" archive="16"/>`
)

func TestParsePrimary(t *testing.T) {
	for _, c := range []struct {
		name, xml string
		want      string // error text, or "" for success
	}{
		{"createrepo_c shape", primaryXML("1", fields+`<summary>s</summary><description>a &lt;/description&gt; b</description>`+
			`<time file="1" build="2"/>`+size+`<location href="foo.rpm"/><format><rpm:license>MIT</rpm:license><file>/x</file></format>`), ""},
		{"fields in another order", primaryXML("1", size+`<format/>`+`<checksum type="sha256">`+sum1+`</checksum><arch>noarch</arch>`+
			`<version ver="1.0" rel="1"></version><name>foo</name>`), ""},
		{"no size", primaryXML("1", fields), "lacks one of"},
		{"name twice", primaryXML("1", fields+`<name>bar</name>`+size), "given twice"},
		{"count mismatch", primaryXML("2", fields+size), "declares 2 packages but lists 1"},
		{"no count", strings.Replace(primaryXML("1", fields+size), ` packages="1"`, "", 1), "missing or not a number"},
		{"other namespace", strings.Replace(primaryXML("1", fields+size), "metadata/common", "metadata/other", 1), "unexpected element"},
		{"sha1 checksum", primaryXML("1", strings.Replace(fields, `type="sha256"`, `type="sha"`, 1)+size), `not "sha256"`},
		{"short checksum", primaryXML("1", strings.Replace(fields, sum1, sum1[2:], 1)+size), "not allowed"},
		{"name with a space", primaryXML("1", strings.Replace(fields, "foo", "f oo", 1)+size), "not allowed"},
		{"bad release", primaryXML("1", strings.Replace(fields, `rel="1"`, `rel="1-2"`, 1)+size), "rpm does not allow"},
		{"element in the name", primaryXML("1", strings.Replace(fields, "foo", "<b>foo</b>", 1)+size), "where text belongs"},
		{"end tag hidden in CDATA", primaryXML("1", fields+`<description><![CDATA[</description>]]></description>`+size), "]]>"},
		{"prefixed element skipped to the wrong end tag", primaryXML("2",
			fields+`<c:format xmlns:c="http://linux.duke.edu/metadata/common">x</c:format>`+size, `<format>y</format>`+fields+size), "closed by"},
		{"token over the bound", primaryXML("1", strings.Replace(fields, "<name>", "<name"+strings.Repeat(` a="b"`, maxTokenBytes/5)+">", 1)+size),
			"token is longer"},
		{"element never closed", strings.TrimSuffix(primaryXML("1", fields+size+`<description>x`), "</package>\n</metadata>\n"),
			"no </package> before the end of the file"},
		{"prefixed element with no plain end tag after it", primaryXML("1",
			fields+`<x:summary xmlns:x="http://linux.duke.edu/metadata/other">s</x:summary>`+size), "<summary>: no </summary> before the end of the file"},
		{"trailing element", primaryXML("1", fields+size) + "<metadata/>", "unexpected element"},
		{"entity", primaryXML("1", strings.Replace(fields, "foo", "&xxe;", 1)+size), "entity"},
		{"name over its length bound", primaryXML("1", strings.Replace(fields, "foo", strings.Repeat("f", maxNameLen+1), 1)+size),
			"longer than 256 bytes"},
		// Every identity field is required (verify.md §2 step 5: a received RPM must match a
		// listed NEVRA, size and SHA-256), not only the size.
		{"no name", primaryXML("1", strings.Replace(fields, "<name>foo</name>", "", 1)+size), "lacks one of"},
		{"no arch", primaryXML("1", strings.Replace(fields, "<arch>noarch</arch>", "", 1)+size), "lacks one of"},
		{"no version", primaryXML("1", strings.Replace(fields, `<version epoch="0" ver="1.0" rel="1"/>`, "", 1)+size), "lacks one of"},
		{"no checksum", primaryXML("1", fields[:strings.Index(fields, "<checksum")]+size), "lacks one of"},
		// The arch's bound is 32 bytes: one more is refused (32 is accepted in TestParsePrimaryBounds).
		{"arch over its length bound", primaryXML("1", strings.Replace(fields, "noarch", strings.Repeat("a", 33), 1)+size),
			"longer than 32 bytes"},
		// Only <package type="rpm"> is a package; anything else in <metadata> is refused, not read as one.
		{"package of another type", strings.Replace(primaryXML("1", fields+size), `type="rpm"`, `type="src"`, 1), "unexpected element"},
		{"element with type rpm that is not a package", strings.Replace(primaryXML("1", fields+size), `<package type="rpm">`,
			`<pkg type="rpm">`, 1), "unexpected element"},
		{"package outside metadata", strings.Replace(primaryXML("2", fields+size), "</metadata>\n",
			"</metadata>\n"+`<package xmlns="http://linux.duke.edu/metadata/common" type="rpm">`+fields+size+"</package>", 1), "unexpected element"},
		// A package's size is compared with the received file's (verify.md §2 step 5).
		{"size not a number", primaryXML("1", fields+strings.Replace(size, `package="1387"`, `package="big"`, 1)), "is not a size"},
		{"negative size", primaryXML("1", fields+strings.Replace(size, `package="1387"`, `package="-1"`, 1)), "is not a size"},
		// Only the common namespace's fields count: a <name> of another namespace is skipped.
		{"name of another namespace", primaryXML("1", fields+`<name xmlns="urn:other">evil</name>`+size), ""},
		{"cut inside metadata", strings.TrimSuffix(primaryXML("1", fields+size), "</metadata>\n"), "EOF"},
	} {
		pkgs, err := ParsePrimary(strings.NewReader(c.xml), nil)
		switch {
		case c.want == "" && (err != nil || len(pkgs) != 1 || pkgs[0].NEVRA.String() != "foo-1.0-1.noarch" || pkgs[0].Size != 1387):
			t.Errorf("%s: %+v, %v", c.name, pkgs, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

// TestParsePrimarySizesFor checks that sizes are read exactly where asked.
func TestParsePrimarySizesFor(t *testing.T) {
	var sum [sha256Size]byte
	copy(sum[:], bytes.Repeat([]byte{0x1d}, 1)) // not sum1
	doc := primaryXML("1", fields+size)
	for _, c := range []struct {
		name     string
		sizesFor map[[sha256Size]byte]bool
		want     int64
	}{
		{"all", nil, 1387},
		{"not received", map[[sha256Size]byte]bool{sum: true}, 0},
	} {
		pkgs, err := ParsePrimary(strings.NewReader(doc), c.sizesFor)
		if err != nil || pkgs[0].Size != c.want {
			t.Errorf("%s: %+v, %v", c.name, pkgs, err)
		}
	}
	if _, err := ParsePrimary(strings.NewReader(primaryXML("1", fields)), map[[sha256Size]byte]bool{sum: true}); err != nil {
		t.Errorf("a package not received needs no size: %v", err)
	}
}

func TestParseRepomd(t *testing.T) {
	const good = `<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>17</revision>
<data type="primary"><open-checksum type="sha256">` + sum1 + `</open-checksum><location href="repodata/p.xml.gz"/>
<timestamp>1000</timestamp><open-size>99</open-size></data><data type="other"><timestamp>2000</timestamp></data></repomd>`
	md, err := ParseRepomd([]byte(good))
	if err != nil || md.Revision != 17 || md.Timestamp.Unix() != 2000 || md.Primary.OpenSize != 99 || md.Primary.Location != "repodata/p.xml.gz" {
		t.Fatalf("%+v, %v", md, err)
	}
	for _, c := range []struct{ name, old, new, want string }{
		{"revision not a number", "<revision>17", "<revision>abc", "not a decimal number"},
		{"a sha512 open-checksum", `<open-checksum type="sha256">`, `<open-checksum type="sha512">`, `has type "sha512", not sha256`},
		{"no open-size", "<open-size>99</open-size>", "", "open-size"},
		{"open-size over the limit", "<open-size>99", "<open-size>99999999999", "open-size"},
		{"two primaries", "</repomd>", `<data type="primary"><open-checksum type="sha256">` + sum1 +
			`</open-checksum><open-size>1</open-size></data></repomd>`, "2 primary entries"},
		{"no primary", `<data type="primary">`, `<data type="primary_db">`, "0 primary entries"},
		{"bad timestamp", "<timestamp>1000", "<timestamp>-1", "not a time"},
		// The state and the result could not record a later time (RFC 3339).
		{"timestamp after the year 9999", "<timestamp>1000", "<timestamp>253402300800", "up to the year 9999"},
		{"revision over 2^63", "<revision>17", "<revision>18446744073709551616", "not a decimal number below 2^63"},
		{"wrong root", "<repomd ", "<repo ", "expected element"},
		{"open-size one over the limit", "<open-size>99", fmt.Sprintf("<open-size>%d", FilePrimary.MaxSize()+1), "open-size"},
		{"negative open-size", "<open-size>99", "<open-size>-1", "open-size"},
		// verify.md §2 step 2 checks the primary's SHA-256: a checksum of any other length is none.
		{"open-checksum one byte short", sum1, sum1[2:], "no sha256"},
		{"open-checksum one byte long", sum1, sum1 + "00", "no sha256"},
	} {
		if _, err := ParseRepomd([]byte(strings.Replace(good, c.old, c.new, 1))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	if md, err := ParseRepomd([]byte(strings.Replace(good, "<timestamp>2000", "<timestamp>253402300799", 1))); err != nil || md.Timestamp.Year() != 9999 {
		t.Errorf("the last second of the year 9999: %+v, %v", md, err)
	}
	atLimit := strings.Replace(good, "<open-size>99", fmt.Sprintf("<open-size>%d", FilePrimary.MaxSize()), 1)
	if md, err := ParseRepomd([]byte(atLimit)); err != nil || md.Primary.OpenSize != FilePrimary.MaxSize() {
		t.Errorf("open-size at the limit: %+v, %v", md, err)
	}
	// The edges of the accepted ranges: the epoch itself is a time, and an empty primary has a size.
	if md, err := ParseRepomd([]byte(strings.Replace(good, "<timestamp>1000", "<timestamp>0", 1))); err != nil || md.Timestamp.Unix() != 2000 {
		t.Errorf("a timestamp of 0: %+v, %v", md, err)
	}
	if md, err := ParseRepomd([]byte(strings.Replace(good, "<open-size>99", "<open-size>0", 1))); err != nil || md.Primary.OpenSize != 0 {
		t.Errorf("open-size 0: %+v, %v", md, err)
	}
	noTimestamp := strings.NewReplacer("<timestamp>1000</timestamp>", "", "<timestamp>2000</timestamp>", "").Replace(good)
	if _, err := ParseRepomd([]byte(noTimestamp)); err == nil || !strings.Contains(err.Error(), "no data entry has a <timestamp>") {
		t.Errorf("no timestamp: err = %v, want freshness refused as not judgeable", err)
	}
}

// TestParsePrimaryBounds pins the edges of what a primary may hold.
func TestParsePrimaryBounds(t *testing.T) {
	// createrepo_c writes packages="0" for an empty repository: a valid primary listing nothing.
	pkgs, err := ParsePrimary(strings.NewReader(primaryXML("0")), nil)
	if err != nil || len(pkgs) != 0 {
		t.Errorf("empty primary: %+v, %v; want no packages and no error", pkgs, err)
	}
	// ... and its count is declared once: a second root cannot declare it again.
	again := primaryXML("0") + `<metadata xmlns="http://linux.duke.edu/metadata/common" packages="1"><package type="rpm">` + fields + size + `</package></metadata>`
	if _, err := ParsePrimary(strings.NewReader(again), nil); err == nil || !strings.Contains(err.Error(), "unexpected element <metadata>") {
		t.Errorf("a second <metadata>: err = %v, want it refused as an unexpected element", err)
	}
	pkgs, err = ParsePrimary(strings.NewReader(primaryXML("1", fields+strings.Replace(size, `package="1387"`, `package="0"`, 1))), nil)
	if err != nil || len(pkgs) != 1 || pkgs[0].Size != 0 {
		t.Errorf("size 0: %+v, %v", pkgs, err)
	}
	// An arch of 32 bytes is within the bound (TestParsePrimary: 33 is not).
	arch32 := strings.Repeat("a", 32)
	pkgs, err = ParsePrimary(strings.NewReader(primaryXML("1", strings.Replace(fields, "noarch", arch32, 1)+size)), nil)
	if err != nil || len(pkgs) != 1 || pkgs[0].Arch != arch32 {
		t.Errorf("arch of 32 bytes: %+v, %v", pkgs, err)
	}
}

// Skipped content is searched for its end tag across the reader's buffer: wherever the end
// tag falls relative to the 64 KiB buffer's edge, it is found (an end tag missed would skip
// the packages after it, which verify.md §2 steps 5-6 need).
func TestParsePrimarySkipAcrossBufferEdge(t *testing.T) {
	for n := 64<<10 - 1024; n <= 64<<10; n++ {
		doc := primaryXML("2", fields+size+"<description>"+strings.Repeat("d", n)+"</description>", fields+size)
		pkgs, err := ParsePrimary(strings.NewReader(doc), nil)
		if err != nil || len(pkgs) != 2 {
			t.Fatalf("description of %d bytes: %d packages, %v", n, len(pkgs), err)
		}
	}
}

// A primary may list at most maxPackages (200,000) packages: one more is refused as it is
// read, so that a signed but hostile primary cannot make dom0 hold any number of them.
func TestParsePrimaryPackageBound(t *testing.T) {
	const count = 200_001
	head := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<metadata xmlns="http://linux.duke.edu/metadata/common" packages="` + fmt.Sprint(count) + `">` + "\n"
	body := `<package type="rpm">` + fields + size + "</package>\n"
	doc := io.MultiReader(strings.NewReader(head), strings.NewReader(strings.Repeat(body, count)), strings.NewReader("</metadata>\n"))
	// sizesFor empty: no size is read, the fast path a real batch takes.
	pkgs, err := ParsePrimary(doc, map[[sha256Size]byte]bool{})
	if err == nil || !strings.Contains(err.Error(), "lists more than 200000 packages") {
		t.Errorf("%d packages: %d read, err = %v; want them refused past 200000", count, len(pkgs), err)
	}
}
