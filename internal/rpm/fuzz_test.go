package rpm_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testrepo"
)

// fuzzSigner is the same ed25519 key in every run, so the committed seed
// corpus (packages it signed) stays valid.
func fuzzSigner(t testing.TB) *testrepo.Signer {
	t.Helper()
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "fuzz", Created: created, Rand: rand.NewChaCha8([32]byte{'p', 'e', 'd', 'o', 's'})})
	if err != nil {
		t.Fatal(err)
	}
	s.SignTime = created.Add(time.Hour)
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

func fuzzVerifier(f *testing.F, s *testrepo.Signer) *rpm.Verifier {
	dir := f.TempDir()
	if _, err := s.WritePublicKey(dir); err != nil {
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
func FuzzReadHeader(f *testing.F) {
	_, _, main, _, err := testrepo.Parts(fuzzPackage(f, fuzzSigner(f)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(main)
	f.Add(main[:100])
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := rpm.ReadHeader(bytes.NewReader(data), rpm.TagHeaderImmutable)
		if err != nil {
			return
		}
		again, err := rpm.ReadHeader(bytes.NewReader(rpm.EncodeHeader(rpm.TagHeaderImmutable, h.Entries)), rpm.TagHeaderImmutable)
		if err != nil || len(again.Entries) != len(h.Entries) {
			t.Fatalf("re-encoded header does not parse back: %v", err)
		}
	})
}

// FuzzVerify: arbitrary bytes never panic; anything accepted has a
// canonical form that is accepted and is its own canonical form.
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
			return
		}
		_, _, main, payload, err := testrepo.Parts(canonical.Bytes())
		if err != nil || !bytes.Equal(main, wantMain) || !bytes.Equal(payload, wantPayload) {
			t.Fatalf("mutation at %d (mask %#x, cut %d) accepted with different content", offset, mask, cut)
		}
	})
}

// TestWriteFuzzCorpus regenerates the committed seed corpus when
// PEDOS_WRITE_FUZZ_CORPUS=1 (the files are small generated packages).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("PEDOS_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set PEDOS_WRITE_FUZZ_CORPUS=1 to regenerate testdata/fuzz")
	}
	good := fuzzPackage(t, fuzzSigner(t))
	_, _, main, _, err := testrepo.Parts(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(target, name string, args ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		content := "go test fuzz v1\n"
		for _, a := range args {
			content += a + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	quote := func(b []byte) string { return "[]byte(" + strconvQuote(b) + ")" }
	write("FuzzVerify", "signed-package", quote(good))
	write("FuzzVerify", "lead-only", quote(good[:rpm.LeadBytes]))
	write("FuzzReadHeader", "main-header", quote(main))
	write("FuzzVerifyMutated", "header-byte", "uint16(700)", "byte('\\x80')", "uint16(0)")
	write("FuzzVerifyMutated", "truncated", "uint16(0)", "byte('\\x00')", "uint16(5)")
}

func strconvQuote(b []byte) string { return strconv.Quote(string(b)) }
