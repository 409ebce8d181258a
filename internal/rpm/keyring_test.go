package rpm_test

import (
	"bytes"
	"crypto/rsa"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
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

// A version 6 signature by a trusted version 6 key is refused: the
// canonical rewrite re-encodes version 4 packets only (P5), and rpm 4.18
// reads no other.
func TestVersion6SignatureRefused(t *testing.T) {
	e, err := openpgp.NewEntity("v6", "", "", &packet.Config{V6Keys: true, Algorithm: packet.PubKeyAlgoEd25519})
	if err != nil {
		t.Fatal(err)
	}
	s := &testrepo.Signer{Entity: e}
	keyring, warnings := loadKey(t, s, time.Now())
	if len(warnings) != 0 {
		t.Fatalf("warnings %v", warnings)
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
	if !rejected(err, rpm.KindBadSignature, "not a version 4 signature packet") {
		t.Errorf("got %v, want the version 6 signature refused", err)
	}
}
