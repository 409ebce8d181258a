package repometa

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
)

// TestWriteFuzzCorpus regenerates the seed corpora of FuzzParseRepomd and
// FuzzParsePrimary when PEDOS_WRITE_FUZZ_CORPUS=1, and otherwise checks that
// they are what it makes (testbin.SeedFile): repomd.xml and
// primary.xml as createrepo_c (and modifyrepo_c) write them for
// repositories of packages internal/testrepo builds, and edits of them one
// step off that shape. The seeds are the same in every run: packages and
// file times are fixed, and the clock values createrepo_c takes from the
// clock are replaced by fixed ones.
func TestWriteFuzzCorpus(t *testing.T) {
	testbin.SeedTools(t, filepath.Join("testdata", "fuzz"), "createrepo_c", "modifyrepo_c")
	one := fuzzPackages(t, "fuzz-1.0-1")
	three := fuzzPackages(t, "fuzz-1.0-1", "fuzz-libs-2:3.1-4 arch=x86_64 provides=libfuzz=3.1",
		"fuzz-tools-0.9~rc1-1.fc41 arch=x86_64 requires=fuzz-libs>=3.1 obsoletes=fuzz-old<0.9")
	var twenty []string
	for i := range 20 {
		spec := fmt.Sprintf("fuzz-%02d-%d:1.%d-%d", i, i%3, i, i%4+1)
		switch i % 4 {
		case 1:
			spec += " arch=x86_64 requires=fuzz-00"
		case 2:
			spec += " arch=src"
		}
		twenty = append(twenty, spec)
	}

	revision := fmt.Sprint(day0.Unix())
	withRevision := []string{"--revision=" + revision, "--set-timestamp-to-revision"}
	repodata := createrepo(t, three, withRevision...)
	repomd, primary := repomdOf(t, repodata), primaryOf(t, repodata)
	repomdNoRevision := repomdOf(t, createrepo(t, three))
	repomdSHA512 := repomdOf(t, createrepo(t, three, append(withRevision, "--checksum=sha512")...))
	repomdSHA1 := repomdOf(t, createrepo(t, three, append(withRevision, "--repomd-checksum=sha1")...))
	repomdTags := repomdOf(t, createrepo(t, three, append(withRevision, "--distro=cpe:/o:pedos:pedos:1,PedOS 1",
		"--content=binary-x86_64", "--repo=fuzz")...))
	repomdUpdateinfo := repomdOf(t, withUpdateinfo(t, createrepo(t, three, withRevision...)))
	primaryOne := primaryOf(t, createrepo(t, one, withRevision...))
	primaryTwenty := primaryOf(t, createrepo(t, fuzzPackages(t, twenty...), withRevision...))
	// The real shapes must pass, so that the fuzzer starts from the accepting paths too.
	for _, accepted := range [][]byte{repomd, repomdNoRevision, repomdTags, repomdUpdateinfo} {
		if _, err := ParseRepomd(accepted); err != nil {
			t.Fatal(err)
		}
	}
	for want, accepted := range map[int][]byte{1: primaryOne, 3: primary, 20: primaryTwenty} {
		if pkgs, err := ParsePrimary(bytes.NewReader(accepted), nil); err != nil || len(pkgs) != want {
			t.Fatalf("primary of %d packages: %d parsed (%v)", want, len(pkgs), err)
		}
	}

	primaryEntry := regexp.MustCompile(`(?s)  <data type="primary">.*?</data>\n`).FindString(string(repomd))
	openChecksum := regexp.MustCompile(`    <open-checksum[^\n]*\n`).FindString(primaryEntry)
	for name, content := range map[string][]byte{
		"createrepo_c":                  repomd,
		"createrepo_c-no-revision":      repomdNoRevision,
		"createrepo_c-updateinfo":       repomdUpdateinfo,
		"createrepo_c-checksum-sha512":  repomdSHA512,
		"createrepo_c-repomd-sha1":      repomdSHA1,
		"createrepo_c-tags":             repomdTags,
		"two-primary-entries":           replace(repomd, primaryEntry, primaryEntry+primaryEntry),
		"no-primary-entry":              replace(repomd, primaryEntry, ""),
		"primary-without-open-checksum": replace(repomd, openChecksum, ""), // the primary's is the first
		"entities": replace(repomd, "<revision>"+revision, "<revision>&#"+fmt.Sprint(int(revision[0]))+";"+revision[1:],
			`href="repodata/primary.xml.gz"`, `href="repodata/primary&amp;x.xml.gz"`),
		"cdata": replace(repomd, "<revision>"+revision, "<revision><![CDATA["+revision+"]]>",
			`<open-size>`, `<open-size><![CDATA[]]>`),
		"doctype-entity": replace(repomd, "<repomd ", "<!DOCTYPE repomd [<!ENTITY rev \""+revision+"\">]>\n<repomd ",
			"<revision>"+revision, "<revision>&rev;"),
		"prefixed-namespace": replace(repomd, `<repomd xmlns="http://linux.duke.edu/metadata/repo"`,
			`<r:repomd xmlns:r="http://linux.duke.edu/metadata/repo"`, "</repomd>", "</r:repomd>"),
	} {
		writeSeed(t, "FuzzParseRepomd", name, content)
	}

	for name, seed := range map[string]struct {
		primary []byte
		noSizes bool
	}{
		"createrepo_c-1-package":                 {primaryOne, false},
		"createrepo_c-3-packages":                {primary, false},
		"createrepo_c-3-packages-no-sizes-asked": {primary, true},
		"createrepo_c-20-packages":               {primaryTwenty, false},
		"packages-count-disagrees":               {replace(primary, `packages="3"`, `packages="4"`), false},
		"duplicate-name":                         {replace(primaryOne, "<name>fuzz</name>", "<name>fuzz</name><name>fuzz</name>"), false},
		"cdata-holds-end-of-package": {replace(primaryOne, "<rpm:license>MIT</rpm:license>",
			"<rpm:license><![CDATA[MIT</package><package type=\"rpm\">]]></rpm:license>"), false},
		// 4 KiB: the 1 MiB token bound itself is beyond a seed's size (primary_test.go
		// covers it), and go's minimizer is quadratic in an input's length.
		"long-token": {replace(primaryOne, "<summary>", `<summary x="`+strings.Repeat("x", 4<<10)+`">`), false},
		"entity-references": {replace(primaryOne, "<name>fuzz</name>", "<name>fu&#x7a;&#122;</name>",
			"<arch>noarch</arch>", "<arch>&#110;oarch</arch>", "<summary>", "<summary>&lt;&amp;&gt;"), false},
		"foreign-namespace-fields": {replace(primaryOne, "<name>fuzz</name>",
			`<name xmlns="urn:fuzz">other</name><name>fuzz</name><o:size xmlns:o="urn:fuzz" package="1"/>`), false},
		"prefixed-namespace": {replace(primaryOne, `<metadata xmlns="http://linux.duke.edu/metadata/common"`,
			`<c:metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:c="http://linux.duke.edu/metadata/common"`,
			"<package ", "<c:package ", "</package>", "</c:package>", "</metadata>", "</c:metadata>"), false},
	} {
		writeSeed(t, "FuzzParsePrimary", name, seed.primary, seed.noSizes)
	}
}

// fuzzPackages builds one signed package per testrepo spec into a fresh
// directory, with a fixed modification time (createrepo_c records it).
func fuzzPackages(t *testing.T, specs ...string) string {
	t.Helper()
	signer, err := testrepo.NewSigner(testrepo.KeySpec{Name: "fuzz", Created: buildTime, Rand: rand.NewChaCha8([32]byte{'r', 'e', 'p', 'o'})})
	if err != nil {
		t.Fatal(err)
	}
	signer.SignTime = buildTime
	dir := t.TempDir()
	for _, spec := range specs {
		p, err := testrepo.ParsePackageSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		p.BuildTime = buildTime
		path, err := testrepo.WriteFile(dir, p, signer)
		if err == nil {
			err = os.Chtimes(path, buildTime, buildTime)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// createrepo runs createrepo_c over the packages in dir into a fresh
// output directory and returns its repodata directory.
func createrepo(t *testing.T, dir string, args ...string) (repodata string) {
	t.Helper()
	out := t.TempDir()
	runTool(t, "createrepo_c", append([]string{"--no-database", "--simple-md-filenames", "--outputdir=" + out}, append(args, dir)...)...)
	return filepath.Join(out, "repodata")
}

// primaryOf is the decompressed primary.xml of a repodata directory.
func primaryOf(t *testing.T, repodata string) []byte {
	t.Helper()
	primary, err := decompress(filepath.Join(repodata, "primary.xml.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return primary
}

// withUpdateinfo has modifyrepo_c add an uncompressed updateinfo.xml to a
// repodata directory (a data entry without open-checksum).
func withUpdateinfo(t *testing.T, repodata string) string {
	t.Helper()
	updateinfo := filepath.Join(t.TempDir(), "updateinfo.xml")
	content := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<updates><update from="fuzz@example.org" status="final" type="security" version="2.0">` +
		`<id>FUZZ-2025-1</id><title>fuzz</title><issued date="2025-03-01 00:00:00"/><pkglist><collection short="fuzz"><name>fuzz</name>` +
		`<package name="fuzz" version="1.0" release="1" epoch="0" arch="noarch"><filename>fuzz-1.0-1.noarch.rpm</filename></package>` +
		"</collection></pkglist></update></updates>\n"
	if err := os.WriteFile(updateinfo, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, "modifyrepo_c", "--no-compress", "--simple-md-filenames", updateinfo, repodata)
	return repodata
}

// repomdOf reads the repomd.xml of a repodata directory and replaces the
// revision and timestamps later than day0, the revision the corpus passes
// (createrepo_c and modifyrepo_c took them from the clock), by day0.
func repomdOf(t *testing.T, repodata string) []byte {
	t.Helper()
	repomd, err := os.ReadFile(filepath.Join(repodata, "repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	clockValue := regexp.MustCompile(`<(revision|timestamp)>([0-9]+)</`)
	return clockValue.ReplaceAllFunc(repomd, func(m []byte) []byte {
		parts := clockValue.FindSubmatch(m)
		if seconds, err := strconv.ParseInt(string(parts[2]), 10, 64); err != nil || seconds <= day0.Unix() {
			return m
		}
		return fmt.Appendf(nil, "<%s>%d</", parts[1], day0.Unix())
	})
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "LC_ALL=C", "PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// decompress reads a gzip-compressed metadata file.
func decompress(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// replace applies old/new pairs in turn, each exactly once; a pair that
// does not match fails, so that an edit never silently does nothing.
func replace(content []byte, oldNew ...string) []byte {
	for i := 0; i < len(oldNew); i += 2 {
		if oldNew[i] == "" || !bytes.Contains(content, []byte(oldNew[i])) {
			panic(fmt.Sprintf("fuzz corpus: %q not found", oldNew[i]))
		}
		content = bytes.Replace(content, []byte(oldNew[i]), []byte(oldNew[i+1]), 1)
	}
	return content
}

// writeSeed writes one seed in go's corpus format to testdata/fuzz/TARGET/NAME.
func writeSeed(t *testing.T, target, name string, data []byte, more ...bool) {
	t.Helper()
	content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	for _, b := range more {
		content += fmt.Sprintf("bool(%v)\n", b)
	}
	testbin.SeedFile(t, filepath.Join("testdata", "fuzz", target, name), []byte(content))
}
