package repometa

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"pedos.dev/updates/internal/rpm"
)

// PinnedKey is the public key updates.conf pins for one repository's
// metadata (verify.md §2 step 1). Only this key may sign that repository's
// repomd.xml, whatever else dom0 trusts for packages (M7).
type PinnedKey struct {
	Fingerprint string // the primary key's, upper-case hex
	keyring     openpgp.EntityList
}

// LoadPinnedKey reads an armored public key file that holds exactly one
// key, RSA of at least 2048 bits or ed25519 (the package policy, verify.md
// §1), not revoked.
func LoadPinnedKey(path string) (*PinnedKey, error) {
	keyring, err := rpm.ReadKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("metadata key %s: %w", path, err)
	}
	if len(keyring) != 1 {
		return nil, fmt.Errorf("metadata key %s: holds %d keys; pin exactly one per repository", path, len(keyring))
	}
	if keyring[0].PrivateKey != nil {
		return nil, fmt.Errorf("metadata key %s: holds a secret key; pin the public key only (and keep the secret one off dom0)", path)
	}
	if err := rpm.KeyStrength(keyring[0].PrimaryKey); err != nil {
		return nil, fmt.Errorf("metadata key %s: %w", path, err)
	}
	// Refused here, before any download, not only at the signature check.
	if len(keyring[0].Revocations) > 0 {
		return nil, fmt.Errorf("metadata key %s: the key is revoked; pin the repository's new key", path)
	}
	return &PinnedKey{Fingerprint: fmt.Sprintf("%X", keyring[0].PrimaryKey.Fingerprint), keyring: keyring}, nil
}

// verify checks a detached armored signature over the exact repomd.xml
// bytes. Expiry and revocation are judged at the later of the trusted time
// and the signature's own creation time: a key or signature that had expired
// by any time dom0 trusts is refused, while a publisher whose clock runs
// ahead of dom0's is not an error.
func (k *PinnedKey) verify(repomd, untrustedArmored []byte, trustedNow time.Time) (Kind, error) {
	block, err := armor.Decode(bytes.NewReader(untrustedArmored))
	if err != nil || block.Type != openpgp.SignatureType {
		return BadSignature, errors.New("repomd.xml.asc is not an armored OpenPGP signature")
	}
	// go-crypto's errors are quoted: one may hold a byte of the packet (an
	// AEAD packet's cipher byte), and nothing has been checked yet.
	untrustedPackets, err := io.ReadAll(block.Body)
	if err != nil {
		return BadSignature, fmt.Errorf("repomd.xml.asc: %q", err.Error())
	}
	packets := packet.NewReader(bytes.NewReader(untrustedPackets))
	p, err := packets.Next()
	if err != nil {
		return BadSignature, fmt.Errorf("repomd.xml.asc: %q", err.Error())
	}
	sig, ok := p.(*packet.Signature)
	if _, err := packets.Next(); !ok || sig.IssuerKeyId == nil || err != io.EOF {
		return BadSignature, errors.New("repomd.xml.asc must hold exactly one signature packet naming its key")
	}
	keys := k.keyring.KeysById(*sig.IssuerKeyId)
	if len(keys) == 0 {
		return WrongKey, fmt.Errorf("repomd.xml is signed by key %016X, not by the key pinned for this repository (%s)", *sig.IssuerKeyId, k.Fingerprint)
	}
	if err := rpm.KeyStrength(keys[0].PublicKey); err != nil {
		return BadSignature, fmt.Errorf("repomd.xml is signed by key %016X: %w", *sig.IssuerKeyId, err)
	}
	// Valid in itself only once its key exists, as a package's (verify.md §1.2).
	if sig.CreationTime.Before(keys[0].PublicKey.CreationTime) {
		return BadSignature, fmt.Errorf("repomd.xml.asc is dated %s, before key %016X was made", sig.CreationTime.UTC().Format(time.RFC3339), *sig.IssuerKeyId)
	}
	switch sig.Hash {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512, crypto.SHA3_256, crypto.SHA3_512:
	default:
		return BadSignature, fmt.Errorf("repomd.xml.asc uses hash %v; SHA-256 or stronger is required", sig.Hash)
	}
	at := later(trustedNow, sig.CreationTime)
	config := &packet.Config{Time: func() time.Time { return at }}
	if _, _, err := openpgp.VerifyDetachedSignature(k.keyring, bytes.NewReader(repomd), bytes.NewReader(untrustedPackets), config); err != nil {
		return BadSignature, fmt.Errorf("repomd.xml.asc does not verify with key %s: %q", k.Fingerprint, err.Error())
	}
	return "", nil
}

// later is the latest of the given times.
func later(first time.Time, rest ...time.Time) time.Time {
	for _, t := range rest {
		if t.After(first) {
			first = t
		}
	}
	return first
}
