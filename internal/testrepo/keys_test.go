package testrepo

import (
	"bytes"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// A stored key signs as the key it was stored from: with the same key
// (primary or signing subkey), verifiable by its public half.
func TestLoadSigner(t *testing.T) {
	for _, spec := range []KeySpec{{}, {SigningSubkey: true}} {
		original, err := NewSigner(spec)
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := LoadSigner(original.PrivateKeyArmored())
		if err != nil {
			t.Fatal(err)
		}
		if loaded.signingKey.KeyId != original.signingKey.KeyId {
			t.Errorf("subkey %v: signs with key %X, want %X", spec.SigningSubkey, loaded.signingKey.KeyId, original.signingKey.KeyId)
		}
		sig, err := loaded.SignDetached([]byte("data"))
		if err != nil {
			t.Fatal(err)
		}
		public, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(original.PublicKeyArmored()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := openpgp.CheckDetachedSignature(public, bytes.NewReader([]byte("data")), bytes.NewReader(sig), nil); err != nil {
			t.Errorf("subkey %v: the loaded key's signature does not verify: %v", spec.SigningSubkey, err)
		}
	}
	if _, err := LoadSigner(nil); err == nil {
		t.Error("no key loaded without an error")
	}
	original, _ := NewSigner(KeySpec{})
	if _, err := LoadSigner(original.PublicKeyArmored()); err == nil {
		t.Error("a public key loaded as a signer")
	}
}
