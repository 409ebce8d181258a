package repometa

import (
	"bytes"
	"crypto"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/rpmver"
)

// The seeds in testdata/fuzz/ are real createrepo_c output and edits of it,
// made by TestWriteFuzzCorpus (fuzzcorpus_test.go).

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

// FuzzVerifySignature feeds verify any repomd.xml and repomd.xml.asc against a pinned key
// (deterministic, so that the committed seeds' signatures verify): it must never panic, every
// refusal must carry its kind, and it may accept only what go-crypto's own armored check
// accepts for the same bytes, key and time: our unpacking of the armor and the packet must
// never let through what the library would refuse.
func FuzzVerifySignature(f *testing.F) {
	seed := [32]byte{'p', 'e', 'd', 'o', 's'}
	pub := newPublisher(f, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Rand: rand.NewChaCha8(seed)})
	repomd := []byte(`<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>7</revision></repomd>`)
	good := pub.sign(f, repomd, day0, crypto.SHA256)
	if _, err := pub.pinned.verify(repomd, good, day0); err != nil {
		f.Fatalf("the good seed is refused, so the cross-check below would never run: %v", err)
	}
	f.Add(repomd, good)
	f.Add(repomd, pub.sign(f, repomd, day0, crypto.SHA1))
	f.Add(append(repomd, ' '), good)
	f.Add(repomd, bytes.Replace(good, []byte("SIGNATURE"), []byte("MESSAGE"), 2))
	// go-crypto names an AEAD packet's cipher by its raw byte: here ESC.
	f.Add(repomd, armorSignature(f, append([]byte{0xC0 | 20, 20, 1, 0x1b, 1, 0}, make([]byte, 16)...)))
	f.Fuzz(func(t *testing.T, repomd, untrustedArmored []byte) {
		kind, err := pub.pinned.verify(repomd, untrustedArmored, day0)
		if err != nil {
			if kind == "" {
				t.Fatalf("refused without a kind: %v", err)
			}
			// Nothing unchecked reaches dom0's log as it is (a terminal escape).
			if strings.ContainsFunc(err.Error(), unicode.IsControl) {
				t.Fatalf("the refusal holds a control character: %q", err)
			}
			return
		}
		block, err := armor.Decode(bytes.NewReader(untrustedArmored))
		if err != nil {
			t.Fatalf("accepted a signature that is not armored: %v", err)
		}
		p, err := packet.Read(block.Body)
		sig, ok := p.(*packet.Signature)
		if err != nil || !ok {
			t.Fatalf("accepted something that is not a signature packet: %v", err)
		}
		at := later(day0, sig.CreationTime)
		config := &packet.Config{Time: func() time.Time { return at }}
		if _, err := openpgp.CheckArmoredDetachedSignature(pub.pinned.keyring, bytes.NewReader(repomd), bytes.NewReader(untrustedArmored), config); err != nil {
			t.Fatalf("accepted a signature go-crypto refuses: %v", err)
		}
	})
}

// classifyErrors are Classify's only errors.
var classifyErrors = map[string]struct{}{
	"repometa: file name is neither a package nor repository metadata": {},
	"repometa: primary metadata carries no signature of its own":       {},
}

// FuzzClassify: a staged file's name is the UpdateVM's choice. Whatever it
// is, Classify accepts only the names it can give back exactly (a package
// file name by verify.md §1's rule, or docs/freshness.md's metadata names
// for a valid repository id), and its error never repeats the name.
func FuzzClassify(f *testing.F) {
	for _, name := range []string{"hello-1.0-1.noarch.rpm", "repomd--fedora.xml", "repomd--updates-testing.xml.asc",
		"primary--fedora.xml", "primary--fedora.xml.asc", "repomd--.xml", "repomd--a/b.xml", "x.rpm", "../a-1-1.noarch.rpm"} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, untrustedName string) {
		kind, repo, err := Classify(untrustedName)
		if err != nil {
			// One of two fixed messages: nothing of the name is in them.
			if _, fixed := classifyErrors[err.Error()]; !fixed {
				t.Fatalf("%q: an error that depends on the name: %v", untrustedName, err)
			}
			return
		}
		var rebuilt string
		switch kind {
		case FilePackage:
			if repo != "" || rpm.CheckFileName(untrustedName) != nil {
				t.Fatalf("%q taken for a package (repo %q)", untrustedName, repo)
			}
			return
		case FileRepomd:
			rebuilt = "repomd--" + repo + ".xml"
		case FileRepomdSignature:
			rebuilt = "repomd--" + repo + ".xml.asc"
		case FilePrimary:
			rebuilt = "primary--" + repo + ".xml"
		default:
			t.Fatalf("%q: kind %d", untrustedName, kind)
		}
		if rebuilt != untrustedName || !RepoIDPattern.MatchString(repo) || strings.HasSuffix(untrustedName, ".rpm") {
			t.Fatalf("%q taken for metadata kind %d of repository %q", untrustedName, kind, repo)
		}
	})
}
