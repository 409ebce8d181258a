package rpm_test

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testrepo"
)

// KeyStrength at its bounds (P7): RSA of 2048 bits passes and of 2047 does
// not; a legacy EdDSA key on a curve other than ed25519 (here ed448, which
// go-crypto parses) is refused.
func TestKeyStrengthBounds(t *testing.T) {
	created := time.Now()
	for bits, ok := range map[int]bool{2047: false, 2048: true} {
		n := new(big.Int).SetBit(big.NewInt(1), bits-1, 1) // the bit length is all KeyStrength reads
		err := rpm.KeyStrength(packet.NewRSAPublicKey(created, &rsa.PublicKey{N: n, E: 65537}))
		if ok && err != nil || !ok && (err == nil || err.Kind != rpm.KindWeakAlgorithm || !strings.Contains(err.Error(), "RSA key of 2047 bits")) {
			t.Errorf("RSA of %d bits: %v, want ok=%v", bits, err, ok)
		}
	}
	// A v4 public-key packet (old format, tag 6): version, creation time,
	// algorithm 22 (EdDSA legacy), the ed448 OID, and an MPI of 0x40 and 57 point bytes.
	body := []byte{4, 0x60, 0, 0, 0, 22, 3, 0x2b, 0x65, 0x71, 0x01, 0xcf, 0x40}
	body = append(body, bytes.Repeat([]byte{7}, 57)...)
	p, err := packet.Read(bytes.NewReader(append([]byte{0x98, byte(len(body))}, body...)))
	if err != nil {
		t.Fatal(err)
	}
	if err := rpm.KeyStrength(p.(*packet.PublicKey)); err == nil || err.Kind != rpm.KindWeakAlgorithm || !strings.Contains(err.Error(), "ed25519 only") {
		t.Errorf("EdDSA on ed448: %v, want refused as not ed25519", err)
	}
}

// A key file holding a secret key is skipped, so that a key pasted from the
// wrong export neither becomes trusted nor is shipped to the UpdateVM.
func TestKeyringRefusesSecretKeys(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "RPM-GPG-KEY-secret"), s.PrivateKeyArmored(), 0o644); err != nil {
		t.Fatal(err)
	}
	keyring, warnings, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "secret key") || len(keyring.Files()) != 0 {
		t.Errorf("warnings %v, %d files loaded; want the file skipped for its secret key", warnings, len(keyring.Files()))
	}
}

// withSigningSubkey adds a signing subkey made at created to a fresh
// ed25519 key and returns its public key file's signer. rsaBits > 0 makes
// the subkey RSA of that size. A primary that cannot sign makes the subkey
// the only signing key, as for a key whose primary is kept offline.
func withSigningSubkey(t *testing.T, created time.Time, rsaBits int, primaryCanSign bool) *testrepo.Signer {
	t.Helper()
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "subkey test", Created: created.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e := s.Entity
	config := &packet.Config{Time: func() time.Time { return created }}
	if !primaryCanSign {
		for _, id := range e.Identities {
			id.SelfSignature.FlagSign = false
			if err := id.SelfSignature.SignUserId(id.UserId.Id, e.PrimaryKey, e.PrivateKey, config); err != nil {
				t.Fatal(err)
			}
			id.Signatures = []*packet.Signature{id.SelfSignature}
		}
	}
	if rsaBits > 0 {
		config.Algorithm, config.RSABits = packet.PubKeyAlgoRSA, rsaBits
	}
	if err := e.AddSigningSubkey(config); err != nil {
		t.Fatal(err)
	}
	return s
}

// A signing subkey weaker than the policy skips its key file, however strong
// the primary (P7).
func TestWeakSigningSubkey(t *testing.T) {
	s := withSigningSubkey(t, time.Now().Add(-time.Minute), 1024, true)
	keyring, warnings := loadKey(t, s, time.Now())
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "RSA key of 1024 bits") || len(keyring.Files()) != 0 {
		t.Errorf("warnings %v; want the file skipped for its 1024-bit signing subkey", warnings)
	}
}

// A key whose only signing key is a subkey made after dom0's time floor
// loads and verifies: the key is judged at its newest part's creation.
func TestSigningSubkeyMadeAfterTheFloor(t *testing.T) {
	floor := time.Now().Add(-2 * time.Hour)
	s := withSigningSubkey(t, time.Now().Add(-time.Hour), 0, false)
	keyring, warnings := loadKey(t, s, floor)
	if len(warnings) != 0 || len(keyring.Files()) != 1 {
		t.Fatalf("warnings %v; want the key loaded", warnings)
	}
	l := split(t, build(t, spec))
	sig := new(bytes.Buffer)
	if err := openpgp.DetachSign(sig, s.Entity, bytes.NewReader(l.mainHeader), nil); err != nil {
		t.Fatal(err)
	}
	data, err := testrepo.Assemble(l.lead, l.mainHeader, l.payload, []rpm.Entry{rpm.BinEntry(rpm.SigTagDSAHeader, sig.Bytes())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&rpm.Verifier{Keyring: keyring, Now: floor}).Verify(bytes.NewReader(data), io.Discard); err != nil {
		t.Errorf("a package signed by the subkey: %v", err)
	}
}

// A version 6 key is skipped, with a warning, as rpm 4.18 cannot import
// it (what rpmkeys imports is what the native verifier trusts); its
// version 6 signature is refused as such: the canonical rewrite re-encodes
// version 4 packets only (P5), and rpm 4.18 reads no other.
func TestVersion6KeyAndSignatureRefused(t *testing.T) {
	e, err := openpgp.NewEntity("v6", "", "", &packet.Config{V6Keys: true, Algorithm: packet.PubKeyAlgoEd25519})
	if err != nil {
		t.Fatal(err)
	}
	s := &testrepo.Signer{Entity: e}
	keyring, warnings := loadKey(t, s, time.Now())
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "a version 6 key (rpm reads version 4 keys only)") {
		t.Fatalf("warnings %v, want the version 6 key skipped", warnings)
	}
	l := split(t, build(t, spec))
	sig := new(bytes.Buffer)
	if err := openpgp.DetachSign(sig, e, bytes.NewReader(l.mainHeader), nil); err != nil {
		t.Fatal(err)
	}
	data, err := testrepo.Assemble(l.lead, l.mainHeader, l.payload, []rpm.Entry{rpm.BinEntry(rpm.SigTagDSAHeader, sig.Bytes())})
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&rpm.Verifier{Keyring: keyring}).Verify(bytes.NewReader(data), io.Discard)
	if !rejected(err, rpm.KindKeyNotValid, "which the keyring skipped: key file ") || !strings.Contains(err.Error(), ": a version 6 key (rpm reads") {
		t.Errorf("got %v, want the package refused as signed by the skipped version 6 key", err)
	}
}

// An ed25519 key under RFC 9580's algorithm 27 is skipped with a warning
// saying why: rpm 4.18 cannot import it (it reads ed25519 as EdDSA,
// algorithm 22), so the packages it signs could only disagree.
func TestEd25519Algorithm27KeySkipped(t *testing.T) {
	e, err := openpgp.NewEntity("ed25519, algorithm 27", "", "", &packet.Config{Algorithm: packet.PubKeyAlgoEd25519})
	if err != nil {
		t.Fatal(err)
	}
	if e.PrimaryKey.Version != 4 {
		t.Fatalf("made a version %d key, want 4", e.PrimaryKey.Version)
	}
	_, warnings := loadKey(t, &testrepo.Signer{Entity: e}, time.Now())
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "an ed25519 key of algorithm 27 (rpm reads") {
		t.Fatalf("warnings %v, want the algorithm 27 key skipped", warnings)
	}
}

// A revocation go-crypto cannot read (its hash, RIPEMD-160, not
// implemented) must not vanish: go-crypto's key reader skips such a packet
// without a word, which left the revoked key trusted (P6; rpm 4.18 ignores
// revocations, so the native check is the only one). The file is skipped,
// named, as any key file that fails the policy.
func TestUnreadableRevocationSkipsTheFile(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "revoked with RIPEMD-160", Revoked: true})
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	if err := s.Entity.Serialize(&body); err != nil {
		t.Fatal(err)
	}
	// The revocation's hash algorithm, SHA-256 as made, becomes RIPEMD-160 (3).
	packets := body.Bytes()
	patched := false
	for rest := packets; len(rest) > 0; {
		tag, header, length := packetFrame(t, rest)
		if b := rest[header:]; tag == 2 && b[0] == 4 && b[1] == byte(packet.SigTypeKeyRevocation) {
			b[3], patched = 3, true
		}
		rest = rest[header+length:]
	}
	if !patched {
		t.Fatal("no key revocation signature found to patch")
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "RPM-GPG-KEY-ripemd-revoked"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := armor.Encode(f, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(packets); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	keyring, warnings, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(keyring.Files()) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "holds a packet this verifier cannot read") {
		t.Errorf("key files loaded %q, warnings %v; want the file skipped for its unreadable revocation", keyring.Files(), warnings)
	}
	// Its packages are refused as signed by a skipped key, naming why.
	_, err = (&rpm.Verifier{Keyring: keyring}).Verify(bytes.NewReader(build(t, spec, s)), io.Discard)
	if !rejected(err, rpm.KindKeyNotValid, "which the keyring skipped: key file ") || !strings.Contains(err.Error(), "holds a packet this verifier cannot read") {
		t.Errorf("a package signed by the key: %v; want it refused as signed by a skipped key, saying why", err)
	}
}

// packetFrame reads an OpenPGP packet header (RFC 9580 §4.2, both formats,
// no partial lengths): the packet's tag, the header's length and the body's.
func packetFrame(t *testing.T, b []byte) (tag byte, header, length int) {
	t.Helper()
	if b[0]&0x40 == 0 { // legacy format
		tag, header = b[0]>>2&0x0f, 1+[]int{1, 2, 4}[b[0]&3]
		for _, c := range b[1:header] {
			length = length<<8 | int(c)
		}
		return tag, header, length
	}
	switch tag = b[0] & 0x3f; {
	case b[1] < 192:
		return tag, 2, int(b[1])
	case b[1] < 224:
		return tag, 3, (int(b[1])-192)<<8 + int(b[2]) + 192
	case b[1] == 255:
		return tag, 6, int(b[2])<<24 | int(b[3])<<16 | int(b[4])<<8 | int(b[5])
	}
	t.Fatalf("partial body length in a key packet: %#x", b[:2])
	return 0, 0, 0
}

// A package signed by a good key whose file the keyring skipped for
// another key in it names that other key and the file: the reason is not
// the signer's own (a weak key's file made an ed25519 signer look weak).
func TestSkippedFileNamesTheKeyAtFault(t *testing.T) {
	f := keys(t)
	dir := t.TempDir()
	both := append(append([]byte{}, f.weak.PublicKeyArmored()...), f.ed.PublicKeyArmored()...)
	path := filepath.Join(dir, "RPM-GPG-KEY-weak-and-good")
	if err := os.WriteFile(path, both, 0o644); err != nil {
		t.Fatal(err)
	}
	keyring, _, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&rpm.Verifier{Keyring: keyring}).Verify(bytes.NewReader(build(t, spec, f.ed)), io.Discard)
	want := fmt.Sprintf("which the keyring skipped: key file %q, key %s: RSA key of 1024 bits", path, f.weak.Fingerprint())
	if !rejected(err, rpm.KindWeakAlgorithm, want) {
		t.Errorf("got %v, want a refusal saying %q", err, want)
	}
}

// A revocation counts wherever it is in the keyring (P6): an administrator
// who adds a vendor's revoked key beside the old copy of it, in either
// order of names, or drops the key's revocation certificate in (gpg's
// openpgp-revocs.d/*.rev), revokes the key; the old copy's file is skipped,
// naming the file that revokes it. A certificate by another key revokes
// nothing.
func TestRevocationInAnotherFile(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "revoked later"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := testrepo.NewSigner(testrepo.KeySpec{Name: "another key"})
	if err != nil {
		t.Fatal(err)
	}
	old := s.PublicKeyArmored()
	pkg := build(t, spec, s)
	certificate := func(signer *testrepo.Signer) []byte {
		if err := signer.Entity.RevokeKey(packet.KeyCompromised, "compromised", nil); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(signer.Entity.Revocations[0].Serialize(w), w.Close()); err != nil {
			t.Fatal(err)
		}
		return append([]byte(":"), buf.Bytes()...) // gpg's guard against importing it by mistake
	}
	bystander, err := testrepo.NewSigner(testrepo.KeySpec{Name: "a bystander in the old copy's file"})
	if err != nil {
		t.Fatal(err)
	}
	oldBesideAnother := append(append([]byte(nil), old...), bystander.PublicKeyArmored()...)
	otherCertificate := certificate(other)
	ownCertificate := certificate(s)
	revoked := s.PublicKeyArmored()
	// The revoked copy with a packet go-crypto cannot read after it (a
	// certification hashed with RIPEMD-160, as old keys carry): the file is
	// skipped, and its revocation, which go-crypto did verify, still counts.
	var packets bytes.Buffer
	if err := s.Entity.Serialize(&packets); err != nil {
		t.Fatal(err)
	}
	var unreadable bytes.Buffer
	if err := s.Entity.Revocations[0].Serialize(&unreadable); err != nil {
		t.Fatal(err)
	}
	_, header, _ := packetFrame(t, unreadable.Bytes())
	unreadable.Bytes()[header+3] = 3 // its hash algorithm: RIPEMD-160
	var revokedUnreadable bytes.Buffer
	w, err := armor.Encode(&revokedUnreadable, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(append(packets.Bytes(), unreadable.Bytes()...)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		files   map[string][]byte
		revoker string // the file named as revoking the key; "": none
	}{
		{"revoked copy sorts last", map[string][]byte{"a-old": old, "z-revoked": revoked}, "z-revoked"},
		{"revoked copy sorts first", map[string][]byte{"a-revoked": revoked, "z-old": old}, "a-revoked"},
		{"revocation certificate", map[string][]byte{"RPM-GPG-KEY-old": old, "key.rev": ownCertificate}, "key.rev"},
		{"another key's certificate", map[string][]byte{"RPM-GPG-KEY-old": old, "other.rev": otherCertificate}, ""},
		{"revoked copy with an unreadable packet", map[string][]byte{"a-old": old, "z-revoked": revokedUnreadable.Bytes()}, "z-revoked"},
		{"old copy beside another key", map[string][]byte{"a-old": oldBesideAnother, "z-revoked": revoked}, "z-revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			keyring, warnings, err := rpm.LoadKeyring(dir, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, err = (&rpm.Verifier{Keyring: keyring}).Verify(bytes.NewReader(pkg), io.Discard)
			if tc.revoker == "" {
				if err != nil || len(keyring.Files()) != 1 {
					t.Errorf("verdict %v, files %q, warnings %v; want the key trusted", err, keyring.Files(), warnings)
				}
				return
			}
			revokedBy := fmt.Sprintf("revoked %s %q", map[bool]string{true: "by the certificate", false: "in"}[strings.HasSuffix(tc.revoker, ".rev")], filepath.Join(dir, tc.revoker))
			if len(keyring.Files()) != 0 || !strings.Contains(fmt.Sprint(warnings), revokedBy) {
				t.Errorf("files %q, warnings %v; want every copy skipped, one saying %s", keyring.Files(), warnings, revokedBy)
			}
			if !rejected(err, rpm.KindKeyNotValid, "which the keyring skipped") || !strings.Contains(err.Error(), "revoked") {
				t.Errorf("a package signed by the key: %v; want it refused as signed by a revoked key", err)
			}
			// The rpm-database warning names the revoked key only, not a
			// bystander skipped with it.
			for _, r := range keyring.Revoked {
				if r.KeyID != s.Entity.PrimaryKey.KeyId {
					t.Errorf("Revoked = %+v, want the revoked key only", keyring.Revoked)
				}
			}
			if len(keyring.Revoked) == 0 {
				t.Errorf("Revoked is empty, want the key")
			}
		})
	}
}

// The same for a subkey revoked in another file.
func TestSubkeyRevocationInAnotherFile(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "subkey revoked later", SigningSubkey: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a-old"), s.PublicKeyArmored(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Entity.RevokeSubkey(&s.Entity.Subkeys[0], packet.KeyCompromised, "compromised", nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "z-revoked"), s.PublicKeyArmored(), 0o644); err != nil {
		t.Fatal(err)
	}
	keyring, warnings, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("subkey %016X of key %X is revoked in %q", s.Entity.Subkeys[0].PublicKey.KeyId, s.Entity.PrimaryKey.Fingerprint, filepath.Join(dir, "z-revoked"))
	if len(keyring.Files()) != 0 || !strings.Contains(fmt.Sprint(warnings), want) {
		t.Errorf("files %q, warnings %v; want both skipped, one saying %s", keyring.Files(), warnings, want)
	}
	// Both copies are named with their key's id, the old one, which dom0's
	// rpm database may hold, too: the warning's rpm -e gpg-pubkey-XXXXXXXX
	// must remove it.
	want2 := []rpm.RevokedKey{{File: filepath.Join(dir, "z-revoked"), KeyID: s.Entity.PrimaryKey.KeyId}, {File: filepath.Join(dir, "a-old"), KeyID: s.Entity.PrimaryKey.KeyId}}
	if got := keyring.Revoked; !slices.Equal(got, want2) {
		t.Errorf("Revoked = %+v, want %+v", got, want2)
	}
}

// A signing subkey revoked in the key's only file: the file is skipped, and
// the key is listed as revoked, for the front end's word on dom0's rpm
// database (operations.md), as a key revoked whole is.
func TestSubkeyRevokedInItsOwnFile(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "subkey revoked", SigningSubkey: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Entity.RevokeSubkey(&s.Entity.Subkeys[0], packet.KeyCompromised, "compromised", nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "RPM-GPG-KEY-x"), s.PublicKeyArmored(), 0o644); err != nil {
		t.Fatal(err)
	}
	keyring, _, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := []rpm.RevokedKey{{File: filepath.Join(dir, "RPM-GPG-KEY-x"), KeyID: s.Entity.PrimaryKey.KeyId}}; len(keyring.Files()) != 0 || !slices.Equal(keyring.Revoked, want) {
		t.Errorf("files %q, Revoked %+v; want the file skipped and %+v", keyring.Files(), keyring.Revoked, want)
	}
}

// The revoked key itself is listed in Revoked, not only the older copies
// it revokes: an administrator who replaces a vendor's key file with its
// revoked version (the usual way) must still be told that dom0's rpm
// database keeps trusting the key (docs/operations.md, "says so whenever
// the keyring holds a revoked key"; P6).
func TestRevokedKeyAloneIsListed(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "revoked, alone in the keyring"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Entity.RevokeKey(packet.KeyCompromised, "compromised", nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, err := s.WritePublicKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	keyring, warnings, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := []rpm.RevokedKey{{File: path, KeyID: s.Entity.PrimaryKey.KeyId}}
	if got := keyring.Revoked; len(keyring.Files()) != 0 || !slices.Equal(got, want) {
		t.Errorf("files %q, Revoked = %+v, warnings %v; want no file loaded and Revoked = %+v", keyring.Files(), got, warnings, want)
	}
}

// Only key revocations make a revocation certificate (docs/rpm-verifier.md:
// "a file of key revocation signatures only"). A file holding another
// signature by the key (a direct-key signature, whose hash is a key
// revocation's: go-crypto's VerifyRevocationSignature does not look at the
// type), alone or beside a revocation of another key, or beside a block
// that is no armor, is no certificate file: it is skipped with a warning
// naming it, and a key signature that is not a revocation revokes nothing
// (P6).
func TestOnlyKeyRevocationsMakeACertificate(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "signs over its own key"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := testrepo.NewSigner(testrepo.KeySpec{Name: "another key, revoked"})
	if err != nil {
		t.Fatal(err)
	}
	direct := &packet.Signature{Version: 4, SigType: packet.SigTypeDirectSignature, PubKeyAlgo: s.Entity.PrimaryKey.PubKeyAlgo,
		Hash: crypto.SHA256, CreationTime: time.Now().Add(-time.Minute), IssuerKeyId: &s.Entity.PrimaryKey.KeyId}
	if err := direct.SignDirectKeyBinding(s.Entity.PrimaryKey, s.Entity.PrivateKey, nil); err != nil {
		t.Fatal(err)
	}
	if s.Entity.PrimaryKey.VerifyRevocationSignature(direct) != nil {
		t.Fatal("the direct-key signature does not verify as a revocation would: the test proves nothing")
	}
	if err := other.Entity.RevokeKey(packet.KeyCompromised, "compromised", nil); err != nil {
		t.Fatal(err)
	}
	armored := func(sigs ...*packet.Signature) []byte {
		var buf bytes.Buffer
		w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, sig := range sigs {
			if err := sig.Serialize(w); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	pkg := build(t, spec, s)
	for name, data := range map[string][]byte{
		"a direct-key signature alone":               armored(direct),
		"a revocation and a direct-key signature":    armored(other.Entity.Revocations[0], direct),
		"a revocation and a block that is not armor": append(armored(other.Entity.Revocations[0]), "-----BEGIN PGP SIGNATURE\nnot armor\n"...),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := s.WritePublicKey(dir); err != nil {
				t.Fatal(err)
			}
			notCertificate := filepath.Join(dir, "key.rev")
			if err := os.WriteFile(notCertificate, data, 0o644); err != nil {
				t.Fatal(err)
			}
			keyring, warnings, err := rpm.LoadKeyring(dir, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), fmt.Sprintf("skipping %q", notCertificate)) {
				t.Errorf("warnings %v, want one naming %s as skipped", warnings, notCertificate)
			}
			if name != "a direct-key signature alone" {
				return // whether the revocation beside it counts is not pinned here
			}
			if _, err := (&rpm.Verifier{Keyring: keyring}).Verify(bytes.NewReader(pkg), io.Discard); err != nil || len(keyring.Files()) != 1 {
				t.Errorf("verdict %v, files %q; want the key trusted: its direct-key signature revokes nothing", err, keyring.Files())
			}
		})
	}
}

// A missing keyring or key file is named once, by the caller's words, not
// again in Go's ("keyring K: open K: no such file or directory").
func TestMissingKeysNamedOnce(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, _, err := rpm.LoadKeyring(missing, time.Now()); err == nil || err.Error() != "keyring "+missing+": no such file or directory" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKeyring: %v", err)
	}
	if _, err := rpm.ReadKeyFile(missing); err == nil || err.Error() != "no such file or directory" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadKeyFile: %v", err)
	}
	// A FIFO named as a pinned metadata key is refused, not waited on.
	fifo := filepath.Join(t.TempDir(), "key.asc")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rpm.ReadKeyFile(fifo); err == nil || err.Error() != "not a regular file: a FIFO" {
		t.Errorf("ReadKeyFile of a FIFO: %v", err)
	}
}
