package rpm_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testrepo"
)

// The fuzz keys are created at fuzzKeyTime and sign an hour later, in every
// run, so that the committed seed corpus stays valid.
var fuzzKeyTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// fuzzRSAKeyFile is the public half of the RSA key TestWriteFuzzCorpus
// signs some seeds with: RSA keys cannot be made from a seed in a fuzz
// target, so the generator writes it beside the corpus.
var fuzzRSAKeyFile = filepath.Join("testdata", "fuzz", "RPM-GPG-KEY-fuzz-rsa")

// fuzzSigner is the same ed25519 key in every run.
func fuzzSigner(t testing.TB) *testrepo.Signer {
	t.Helper()
	return fuzzSeededSigner(t, "fuzz", [32]byte{'p', 'e', 'd', 'o', 's'})
}

func fuzzSeededSigner(t testing.TB, name string, seed [32]byte) *testrepo.Signer {
	t.Helper()
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: name, Created: fuzzKeyTime, Rand: rand.NewChaCha8(seed)})
	if err != nil {
		t.Fatal(err)
	}
	s.SignTime = fuzzKeyTime.Add(time.Hour)
	return s
}

// fuzzPackage is a small signed package (about 1.7 KB).
func fuzzPackage(t testing.TB, s *testrepo.Signer) []byte {
	t.Helper()
	data, err := testrepo.Build(testrepo.Package{Name: "fuzz", Version: "1", Release: "1", Requires: []string{"bash"}}, s)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fuzzVerifier trusts s and the committed RSA key.
func fuzzVerifier(f *testing.F, s *testrepo.Signer) *rpm.Verifier {
	dir := f.TempDir()
	if _, err := s.WritePublicKey(dir); err != nil {
		f.Fatal(err)
	}
	rsaKey, err := os.ReadFile(fuzzRSAKeyFile)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, filepath.Base(fuzzRSAKeyFile)), rsaKey, 0o644)
	}
	if err != nil {
		f.Fatal(err)
	}
	keyring, _, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	return &rpm.Verifier{Keyring: keyring}
}

// FuzzReadHeader: arbitrary bytes never panic, memory stays bounded, and
// whatever parses re-encodes to a header that parses to the same entries.
// signatureHeader reads the bytes as a signature header (region tag 62)
// rather than a main header (63), as Verify reads the first of the two.
func FuzzReadHeader(f *testing.F) {
	_, sig, main, _, err := testrepo.Parts(fuzzPackage(f, fuzzSigner(f)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(main, false)
	f.Add(main[:100], false)
	f.Add(sig, true)
	f.Fuzz(func(t *testing.T, data []byte, signatureHeader bool) {
		regionTag := uint32(rpm.TagHeaderImmutable)
		if signatureHeader {
			regionTag = rpm.TagHeaderSignatures
		}
		h, err := rpm.ReadHeader(bytes.NewReader(data), regionTag)
		if err != nil {
			return
		}
		again, err := rpm.ReadHeader(bytes.NewReader(rpm.EncodeHeader(regionTag, h.Entries)), regionTag)
		if err != nil || len(again.Entries) != len(h.Entries) {
			t.Fatalf("re-encoded header does not parse back: %v", err)
		}
	})
}

// noControlCharacters: a refusal reaches dom0's log as it is, so nothing of
// the unchecked bytes in it may be a terminal escape.
func noControlCharacters(t *testing.T, err error) {
	if strings.ContainsFunc(err.Error(), unicode.IsControl) {
		t.Fatalf("the refusal holds a control character: %q", err)
	}
}

// FuzzVerify: arbitrary bytes never panic; a refusal holds no control
// character; anything accepted has a canonical form that is accepted and
// is its own canonical form.
func FuzzVerify(f *testing.F) {
	s := fuzzSigner(f)
	v := fuzzVerifier(f, s)
	good := fuzzPackage(f, s)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		var canonical bytes.Buffer
		pkg, err := v.Verify(bytes.NewReader(data), &canonical)
		if err != nil {
			noControlCharacters(t, err)
			return
		}
		var again bytes.Buffer
		pkg2, err := v.Verify(bytes.NewReader(canonical.Bytes()), &again)
		if err != nil || pkg2.NEVRA() != pkg.NEVRA() || !bytes.Equal(again.Bytes(), canonical.Bytes()) {
			t.Fatalf("canonical form not stable: %v", err)
		}
	})
}

// FuzzVerifyMutated flips bytes of a signed package: the result is either
// rejected or, if the flip only hit bytes the verifier ignores, its
// canonical form carries exactly the original signed header and payload.
func FuzzVerifyMutated(f *testing.F) {
	s := fuzzSigner(f)
	v := fuzzVerifier(f, s)
	good := fuzzPackage(f, s)
	var want bytes.Buffer
	if _, err := v.Verify(bytes.NewReader(good), &want); err != nil {
		f.Fatal(err)
	}
	_, _, wantMain, wantPayload, _ := testrepo.Parts(want.Bytes())
	for _, offset := range []uint16{0, 100, 200, 400, 800, 1200, 1600} {
		f.Add(offset, byte(1), uint16(0))
	}
	f.Fuzz(func(t *testing.T, offset uint16, mask byte, cut uint16) {
		data := bytes.Clone(good)
		data[int(offset)%len(data)] ^= mask
		data = data[:len(data)-int(cut)%len(data)]
		var canonical bytes.Buffer
		if _, err := v.Verify(bytes.NewReader(data), &canonical); err != nil {
			noControlCharacters(t, err)
			return
		}
		_, _, main, payload, err := testrepo.Parts(canonical.Bytes())
		if err != nil || !bytes.Equal(main, wantMain) || !bytes.Equal(payload, wantPayload) {
			t.Fatalf("mutation at %d (mask %#x, cut %d) accepted with different content", offset, mask, cut)
		}
	})
}
