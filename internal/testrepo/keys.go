package testrepo

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Algorithm is the public-key algorithm of a test key.
type Algorithm int

// Key algorithms: the two that verify.md accepts, and a weak one (P7).
const (
	Ed25519 Algorithm = iota
	RSA3072
	RSA1024
)

// KeySpec describes a test key, including the broken ones the negative
// tests need (P6, P7).
type KeySpec struct {
	Name      string        // user ID; default "PedOS test key"
	Algorithm Algorithm     // default Ed25519
	Created   time.Time     // default: one hour ago
	Lifetime  time.Duration // the key expires at Created+Lifetime; 0: never
	Revoked   bool          // add a key revocation signature
	// SigningSubkey makes packages be signed by a signing subkey instead of
	// the primary key. UnboundSubkey does the same with a subkey whose
	// binding signature lacks the back-signature (CVE-2021-3521 shape).
	SigningSubkey bool
	UnboundSubkey bool
	// BrokenBinding, when not BindingIntact, also signs with a signing
	// subkey, whose binding signature is broken as it says (P6).
	BrokenBinding BrokenBinding
	// Rand, if set, is the randomness for key generation: with a fixed
	// Created, a deterministic reader gives the same ed25519 key every run
	// (fuzz corpora signed by it stay valid).
	Rand io.Reader
}

// BrokenBinding is how a signing subkey's binding signature is broken.
type BrokenBinding int

// Broken bindings (P6): each leaves the subkey's back-signature as it is,
// so only the binding itself is wrong.
const (
	BindingIntact BrokenBinding = iota
	// BindingByAnotherKey: the binding is made by another primary key (over
	// that key and the subkey), as if the subkey were grafted on.
	BindingByAnotherKey
	// BindingFlipped: the last byte of the binding's signature value is
	// flipped, so the binding does not verify.
	BindingFlipped
)

// Signer is a test key that signs package headers.
type Signer struct {
	Entity *openpgp.Entity
	// Hash is the digest of package signatures (default SHA-256; SHA-1 for P7).
	Hash crypto.Hash
	// SignatureLifetime makes package signatures expire (P6); 0: never.
	SignatureLifetime time.Duration
	// SignTime is the signatures' creation time; zero: one minute ago.
	SignTime   time.Time
	signingKey *packet.PrivateKey
}

// NewSigner generates a key as spec says. RSA keys take a second or so.
func NewSigner(spec KeySpec) (*Signer, error) {
	if spec.Name == "" {
		spec.Name = "PedOS test key"
	}
	if spec.Created.IsZero() {
		spec.Created = time.Now().Add(-time.Hour)
	}
	config := &packet.Config{
		DefaultHash:     crypto.SHA256,
		Time:            func() time.Time { return spec.Created },
		KeyLifetimeSecs: uint32(spec.Lifetime / time.Second),
		Rand:            spec.Rand,
	}
	switch spec.Algorithm {
	case Ed25519:
		config.Algorithm = packet.PubKeyAlgoEdDSA
		config.Curve = packet.Curve25519
	case RSA3072:
		config.Algorithm, config.RSABits = packet.PubKeyAlgoRSA, 3072
	case RSA1024:
		config.Algorithm, config.RSABits = packet.PubKeyAlgoRSA, 1024
	default:
		return nil, fmt.Errorf("testrepo: unknown key algorithm %d", spec.Algorithm)
	}
	entity, err := openpgp.NewEntity(spec.Name, "", "", config)
	if err != nil {
		return nil, fmt.Errorf("testrepo: generating key: %w", err)
	}
	// NewEntity adds an encryption subkey; package signing keys do not need one.
	entity.Subkeys = nil
	s := &Signer{Entity: entity, Hash: crypto.SHA256, signingKey: entity.PrivateKey}
	if spec.SigningSubkey || spec.UnboundSubkey || spec.BrokenBinding != BindingIntact {
		if err := entity.AddSigningSubkey(config); err != nil {
			return nil, fmt.Errorf("testrepo: adding signing subkey: %w", err)
		}
		subkey := &entity.Subkeys[len(entity.Subkeys)-1]
		s.signingKey = subkey.PrivateKey
		if spec.UnboundSubkey {
			// Re-sign the binding without the subkey's back-signature.
			subkey.Sig.EmbeddedSignature = nil
			if err := subkey.Sig.SignKey(subkey.PublicKey, entity.PrivateKey, config); err != nil {
				return nil, fmt.Errorf("testrepo: re-binding subkey: %w", err)
			}
		}
		if err := breakBinding(subkey, spec.BrokenBinding, config); err != nil {
			return nil, err
		}
	}
	if spec.Revoked {
		if err := entity.RevokeKey(packet.KeyRetired, "retired for a test", config); err != nil {
			return nil, fmt.Errorf("testrepo: revoking key: %w", err)
		}
	}
	return s, nil
}

// breakBinding breaks the binding signature of subkey as how says.
func breakBinding(subkey *openpgp.Subkey, how BrokenBinding, config *packet.Config) error {
	switch how {
	case BindingIntact:
		return nil
	case BindingByAnotherKey:
		other, err := openpgp.NewEntity("another key", "", "", config)
		if err != nil {
			return fmt.Errorf("testrepo: generating the other key: %w", err)
		}
		subkey.Sig.IssuerKeyId = &other.PrimaryKey.KeyId
		if err := subkey.Sig.SignKey(subkey.PublicKey, other.PrivateKey, config); err != nil {
			return fmt.Errorf("testrepo: binding subkey by the other key: %w", err)
		}
		return nil
	case BindingFlipped:
		// The signature value comes last in the packet: flipping its last
		// byte keeps the packet well-formed and the hash prefix right.
		var buf bytes.Buffer
		if err := subkey.Sig.Serialize(&buf); err != nil {
			return fmt.Errorf("testrepo: serializing the binding: %w", err)
		}
		b := buf.Bytes()
		b[len(b)-1] ^= 1
		p, err := packet.Read(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("testrepo: reading the flipped binding: %w", err)
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			return fmt.Errorf("testrepo: the flipped binding reads as a %T", p)
		}
		subkey.Sig = sig
		return nil
	}
	return fmt.Errorf("testrepo: unknown broken binding %d", how)
}

// LoadSigner makes a Signer from an armored private key as PrivateKeyArmored
// writes it: its last signing subkey signs, if it has one with its secret
// half, else the primary key, as NewSigner chose.
func LoadSigner(armored []byte) (*Signer, error) {
	keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("testrepo: reading a stored key: %w", err)
	}
	if len(keys) != 1 || keys[0].PrivateKey == nil {
		return nil, errors.New("testrepo: a stored key must be exactly one private key")
	}
	s := &Signer{Entity: keys[0], Hash: crypto.SHA256, signingKey: keys[0].PrivateKey}
	for _, subkey := range keys[0].Subkeys {
		if subkey.PrivateKey != nil && subkey.Sig.FlagSign {
			s.signingKey = subkey.PrivateKey
		}
	}
	return s, nil
}

// Fingerprint is the primary key's full fingerprint in upper-case hex, as
// the keyring pins it.
func (s *Signer) Fingerprint() string {
	return strings.ToUpper(hex.EncodeToString(s.Entity.PrimaryKey.Fingerprint))
}

// PublicKeyArmored is the armored public key, as a key file in /etc/pki/rpm-gpg holds it.
func (s *Signer) PublicKeyArmored() []byte {
	return s.armored(openpgp.PublicKeyType, s.Entity.Serialize)
}

// PrivateKeyArmored is the armored secret key (for gpg --import in the
// rpmsign cross-validation helper).
func (s *Signer) PrivateKeyArmored() []byte {
	return s.armored(openpgp.PrivateKeyType, func(w io.Writer) error {
		return s.Entity.SerializePrivateWithoutSigning(w, nil)
	})
}

func (s *Signer) armored(blockType string, serialize func(io.Writer) error) []byte {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, blockType, nil)
	if err == nil {
		err = serialize(w)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		// Serializing a freshly generated key into memory cannot fail.
		panic(fmt.Sprintf("testrepo: serializing key: %v", err))
	}
	return buf.Bytes()
}

// WritePublicKey writes the armored public key to dir/RPM-GPG-KEY-<fingerprint>
// and returns the path.
func (s *Signer) WritePublicKey(dir string) (string, error) {
	path := filepath.Join(dir, "RPM-GPG-KEY-"+s.Fingerprint())
	if err := os.WriteFile(path, s.PublicKeyArmored(), 0o644); err != nil {
		return "", fmt.Errorf("testrepo: %w", err)
	}
	return path, nil
}

// SignDetached returns a binary OpenPGP signature packet over data, made
// as rpmsign makes header signatures.
func (s *Signer) SignDetached(data []byte) ([]byte, error) {
	signTime := s.SignTime
	if signTime.IsZero() {
		signTime = time.Now().Add(-time.Minute)
	}
	noSaltNotation := false // deterministic signatures; go-crypto's salt cannot be made for SHA-1
	config := &packet.Config{
		DefaultHash:                           s.Hash,
		Time:                                  func() time.Time { return signTime },
		SigLifetimeSecs:                       uint32(s.SignatureLifetime / time.Second),
		NonDeterministicSignaturesViaNotation: &noSaltNotation,
	}
	sig := &packet.Signature{
		Version:           s.signingKey.Version,
		SigType:           packet.SigTypeBinary,
		PubKeyAlgo:        s.signingKey.PubKeyAlgo,
		Hash:              s.Hash,
		CreationTime:      signTime,
		IssuerKeyId:       &s.signingKey.KeyId,
		IssuerFingerprint: s.signingKey.Fingerprint,
	}
	if s.SignatureLifetime > 0 {
		lifetime := config.SigLifetime()
		sig.SigLifetimeSecs = &lifetime
	}
	h, err := sig.PrepareSign(config)
	if err != nil {
		return nil, fmt.Errorf("testrepo: signing: %w", err)
	}
	h.Write(data)
	if err := sig.Sign(h, s.signingKey, config); err != nil {
		return nil, fmt.Errorf("testrepo: signing: %w", err)
	}
	var buf bytes.Buffer
	if err := sig.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("testrepo: serializing signature: %w", err)
	}
	return buf.Bytes(), nil
}

// isRSA says whether the signing key is RSA (its signatures go in
// RSAHEADER; EdDSA goes in DSAHEADER, as rpmsign does).
func (s *Signer) isRSA() bool {
	return s.signingKey.PubKeyAlgo == packet.PubKeyAlgoRSA
}
