package repometa

import (
	"bytes"
	"testing"

	"pedos.dev/updates/internal/rpmver"
)

// The seeds in testdata/fuzz/ are real createrepo_c output.

func FuzzParseRepomd(f *testing.F) {
	f.Add([]byte(`<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>7</revision><data type="primary">` +
		`<open-checksum type="sha256">` + string(bytes.Repeat([]byte("ab"), 32)) + `</open-checksum>` +
		`<timestamp>9</timestamp><open-size>10</open-size></data></repomd>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := ParseRepomd(data)
		if err != nil {
			return
		}
		if md.Timestamp.IsZero() || md.Primary.OpenSize < 0 || md.Primary.OpenSize > FilePrimary.MaxSize() {
			t.Fatalf("accepted %+v", md)
		}
	})
}

func FuzzParsePrimary(f *testing.F) {
	f.Add([]byte(`<metadata xmlns="http://linux.duke.edu/metadata/common" packages="1"><package type="rpm"><name>a</name>`+
		`<arch>noarch</arch><version epoch="0" ver="1" rel="1"/><checksum type="sha256">`+string(bytes.Repeat([]byte("0f"), 32))+
		`</checksum><size package="5"/><format><file>/x</file></format></package></metadata>`), false)
	f.Fuzz(func(t *testing.T, data []byte, noSizes bool) {
		var sizesFor map[[sha256Size]byte]bool
		if noSizes {
			sizesFor = map[[sha256Size]byte]bool{}
		}
		pkgs, err := ParsePrimary(bytes.NewReader(data), sizesFor)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if _, err := rpmver.New("", p.EVR.Version, p.EVR.Release); err != nil || p.Size < 0 || noSizes && p.Size != 0 ||
				!packageNameChars.MatchString(p.Name) || len(p.Name) > maxNameLen || !archChars.MatchString(p.Arch) {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}
