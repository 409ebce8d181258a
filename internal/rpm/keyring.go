package rpm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"pedos.dev/updates/internal/atomicfile"
)

// maxKeyFileBytes bounds a key file; real package keys are a few KB.
const maxKeyFileBytes = 1 << 20

// Keyring is dom0's set of trusted package-signing keys, pinned by full
// fingerprint (verify.md §1 "Keys"). Keys carried inside packages never
// enter it.
type Keyring struct {
	entities openpgp.EntityList
	files    []string // the key files that loaded, for importing into rpm databases
	// skipped remembers why a key in the directory was not loaded, by the
	// key IDs of its keys, so a verdict can say "weak key" instead of
	// "unknown key".
	skipped map[uint64]*Error
	// Revoked are the keys skipped as revoked (for the front end's word
	// on dom0's rpm database, which a revocation does not reach).
	Revoked []RevokedKey
	// Links maps each symbolic link of the keyring to the key file it
	// names, one that loaded, in the same directory: repositories may name
	// a key by either (Fedora's gpgkey= names RPM-GPG-KEY-fedora-N-ARCH, a
	// link to RPM-GPG-KEY-fedora-N-primary), and the UpdateVM's copy of the
	// keyring needs both names.
	Links map[string]string
}

// LoadKeyring reads every regular file in dir as armored public keys; a
// symbolic link to one of them adds no key (Links, if the file loaded), and
// other entries but directories are skipped with a warning. A key
// that fails the policy at time now (too weak, expired, revoked, badly
// bound, unparsable) is skipped; each skip is returned as a warning naming
// the file, and the other keys still load. A revocation counts wherever it
// is (P6): a key revoked in one file, or by a revocation certificate on its
// own (gpg's openpgp-revocs.d/*.rev), is not trusted from another file
// that holds an older copy of it.
func LoadKeyring(dir string, now time.Time) (*Keyring, []error, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring %s: %w", dir, withoutPath(err))
	}
	k := &Keyring{skipped: map[uint64]*Error{}, Links: map[string]string{}}
	var warnings []error
	links := map[string]string{} // link → the file it names, in dir
	var passed []keyFile
	revoked := map[string]string{} // fingerprints of revoked keys and subkeys → the file that says so
	var certificates []keyFile     // files of revocation certificates only
	for _, entry := range entries {
		path := filepath.Join(dir, entry.Name())
		// Directories hold other keys (per-repository metadata keys);
		// anything else that is not a regular file is named, so that a key
		// linked in from elsewhere does not go missing without a word.
		if entry.IsDir() {
			continue
		}
		// A link to a regular file beside it adds no key: the file's own
		// entry loads it, or says why not. One that leads elsewhere would
		// trust a file outside the keyring.
		if target, err := os.Readlink(path); err == nil {
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, target)
			}
			target = filepath.Clean(target)
			if st, err := os.Lstat(target); err == nil && st.Mode().IsRegular() && filepath.Dir(target) == filepath.Clean(dir) {
				links[path] = target
				continue
			}
		}
		if !entry.Type().IsRegular() {
			warnings = append(warnings, fmt.Errorf("keyring: skipping %q: not a regular file, nor a link to one beside it (a key from elsewhere must be copied into the keyring)", path))
			continue
		}
		entities, err := ReadKeyFile(path)
		// go-crypto verified these revocations as it read them: they
		// count, also from a file skipped for a packet it could not read.
		for _, e := range entities {
			withdrawn := len(e.Revocations) > 0
			if withdrawn {
				revoked[fingerprint(e.PrimaryKey)] = path
			}
			for _, sub := range e.Subkeys {
				if len(sub.Revocations) > 0 {
					revoked[fingerprint(sub.PublicKey)] = path
					withdrawn = true
				}
			}
			if withdrawn {
				k.Revoked = append(k.Revoked, RevokedKey{File: path, KeyID: e.PrimaryKey.KeyId})
			}
		}
		if err != nil {
			if certs := readRevocationCertificates(path); len(certs) > 0 {
				certificates = append(certificates, keyFile{path: path, certificates: certs})
				continue
			}
			// The keys of an unreadable packet's file are named as skipped.
			k.skip(path, entities, KindKeyNotValid, err.Error())
			warnings = append(warnings, fmt.Errorf("keyring: skipping %q: %w", path, err))
			continue
		}
		if err := k.checkPolicy(path, entities, now); err != nil {
			warnings = append(warnings, fmt.Errorf("keyring: skipping %q: %w", path, err))
			continue
		}
		passed = append(passed, keyFile{path: path, entities: entities})
	}
	for _, f := range passed {
		if keyID, reason := revokedElsewhere(f.entities, revoked, certificates); reason != "" {
			k.Revoked = append(k.Revoked, RevokedKey{File: f.path, KeyID: keyID})
			k.skip(f.path, f.entities, KindKeyNotValid, reason)
			warnings = append(warnings, fmt.Errorf("keyring: skipping %q: %s", f.path, reason))
			continue
		}
		k.entities = append(k.entities, f.entities...)
		k.files = append(k.files, f.path)
	}
	for link, file := range links {
		if slices.Contains(k.files, file) {
			k.Links[link] = file
		}
	}
	return k, warnings, nil
}

// keyFile is a file of the keyring: its keys, or its revocation certificates.
type keyFile struct {
	path         string
	entities     openpgp.EntityList
	certificates []*packet.Signature
}

// RevokedKey is a key of the keyring that a revocation withdraws.
type RevokedKey struct {
	File  string // the file that holds the key
	KeyID uint64
}

// skip records why the keys of a skipped file are not trusted: a package
// signed by any of them names the file and the cause, not only "unknown key".
func (k *Keyring) skip(path string, entities openpgp.EntityList, kind Kind, reason string) {
	why := &Error{Kind: kind, Reason: fmt.Sprintf("key file %q, %s", path, reason)}
	for _, skipped := range entities {
		k.skipped[skipped.PrimaryKey.KeyId] = why
		for _, sub := range skipped.Subkeys {
			k.skipped[sub.PublicKey.KeyId] = why
		}
	}
}

// checkPolicy applies keyPolicy to every key of a file. The file is the
// unit of trust: one bad key in it skips the whole file, so what rpmkeys
// imports is exactly what the native verifier trusts.
func (k *Keyring) checkPolicy(path string, entities openpgp.EntityList, now time.Time) error {
	for _, e := range entities {
		err := keyPolicy(e, now)
		if e.PrivateKey != nil {
			err = reject(KindUntrustedKey, "file holds a secret key; export the public key only")
		}
		if err != nil {
			k.skip(path, entities, err.Kind, fmt.Sprintf("key %s: %s", fingerprint(e.PrimaryKey), err.Reason))
			return fmt.Errorf("key %s: %s", fingerprint(e.PrimaryKey), err.Reason)
		}
	}
	return nil
}

// revokedElsewhere says which key of a file another file revokes, and
// how: a copy of the key revoked there, a revocation of one of its
// subkeys, or a revocation certificate that verifies against the key.
func revokedElsewhere(entities openpgp.EntityList, revoked map[string]string, certificates []keyFile) (keyID uint64, reason string) {
	for _, e := range entities {
		if by, ok := revoked[fingerprint(e.PrimaryKey)]; ok {
			return e.PrimaryKey.KeyId, fmt.Sprintf("key %s is revoked in %q", fingerprint(e.PrimaryKey), by)
		}
		for _, sub := range e.Subkeys {
			if by, ok := revoked[fingerprint(sub.PublicKey)]; ok {
				return e.PrimaryKey.KeyId, fmt.Sprintf("subkey %016X of key %s is revoked in %q", sub.PublicKey.KeyId, fingerprint(e.PrimaryKey), by)
			}
		}
		for _, f := range certificates {
			for _, sig := range f.certificates {
				if e.PrimaryKey.VerifyRevocationSignature(sig) == nil {
					return e.PrimaryKey.KeyId, fmt.Sprintf("key %s is revoked by the certificate %q", fingerprint(e.PrimaryKey), f.path)
				}
			}
		}
	}
	return 0, ""
}

// ReadKeyFile reads the public keys of every armored block in path, as
// rpmkeys --import does (RHEL ships several in one file); go-crypto's own
// reader would take the first block and leave the others out. With an
// error it returns no key to trust, only, when a packet was unreadable, the
// keys it read, for the caller to name as skipped.
func ReadKeyFile(path string) (openpgp.EntityList, error) {
	blocks, err := armoredBlocks(path)
	if err != nil {
		return nil, err
	}
	var keys openpgp.EntityList
	for _, block := range blocks {
		// go-crypto refuses the whole key when a subkey binding or its
		// back-signature does not verify (P6, CVE-2021-3521).
		blockKeys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(block))
		if err != nil {
			return nil, fmt.Errorf("not a valid armored public key: %w", err)
		}
		if err := unreadablePacket(block); err != nil {
			// The keys read so far go back with the error: the caller
			// names them as skipped, not unknown.
			return append(keys, blockKeys...), fmt.Errorf("holds a packet this verifier cannot read (a revocation it could not check would leave a revoked key trusted): %w", err)
		}
		keys = append(keys, blockKeys...)
	}
	if len(keys) == 0 {
		return nil, errors.New("not a valid armored public key: no armored block")
	}
	return keys, nil
}

// readRevocationCertificates returns the key revocations of a file that
// holds nothing else, or nil.
func readRevocationCertificates(path string) []*packet.Signature {
	blocks, err := armoredBlocks(path)
	if err != nil {
		return nil
	}
	var sigs []*packet.Signature
	for _, block := range blocks {
		decoded, err := armor.Decode(bytes.NewReader(block))
		if err != nil {
			return nil
		}
		for {
			p, err := packet.Read(decoded.Body)
			if err == io.EOF {
				break
			}
			sig, ok := p.(*packet.Signature)
			if err != nil || !ok || sig.SigType != packet.SigTypeKeyRevocation {
				return nil
			}
			sigs = append(sigs, sig)
		}
	}
	return sigs
}

// withoutPath is a file error without its path: ReadKeyFile's callers name
// the file already ("metadata key K: no such file or directory", not "…: open
// K: no such file or directory").
func withoutPath(err error) error {
	if pathErr, ok := errors.AsType[*fs.PathError](err); ok {
		return pathErr.Err
	}
	return err
}

// armoredBlocks cuts a key file into its armored blocks: armor.Decode
// reads ahead of its block.
func armoredBlocks(path string) ([][]byte, error) {
	f, err := atomicfile.OpenRegular(path, os.O_RDONLY, 0) // a FIFO named as a pinned key must not hang dom0
	if err != nil {
		return nil, withoutPath(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, withoutPath(err)
	}
	if len(data) > maxKeyFileBytes {
		return nil, fmt.Errorf("larger than %d bytes, which no key file is", maxKeyFileBytes)
	}
	begin := []byte("-----BEGIN PGP ")
	var blocks [][]byte
	for rest := data; bytes.Contains(rest, begin); {
		rest = rest[bytes.Index(rest, begin):]
		block := rest
		if next := bytes.Index(rest[len(begin):], begin); next >= 0 {
			block, rest = rest[:len(begin)+next], rest[len(begin)+next:]
		} else {
			rest = nil
		}
		blocks = append(blocks, block)
	}
	return blocks, nil
}

// unreadablePacket says which packet of an armored block go-crypto cannot
// read. Its key reader skips such a packet without a word: a revocation
// signature with a hash it does not implement (RIPEMD-160) would vanish,
// and the revoked key stay trusted (P6). Only packets that carry nothing
// (marker, trust, non-critical unknown tags) may be skipped.
func unreadablePacket(block []byte) error {
	decoded, err := armor.Decode(bytes.NewReader(block))
	if err != nil {
		return err
	}
	for {
		_, err := packet.Read(decoded.Body)
		var skippable pgperrors.UnknownPacketTypeError
		switch {
		case err == io.EOF:
			return nil
		case err != nil && !errors.As(err, &skippable):
			return err
		}
	}
}

// Files lists the key files that loaded.
func (k *Keyring) Files() []string { return append([]string(nil), k.files...) }

// keyPolicy: RSA ≥ 2048 bits or EdDSA on ed25519 for every key that can
// sign, not revoked or expired, and able to sign (verify.md §1.2).
//   - Validity is judged at the later of now (dom0's time floor) and the
//     newest key's creation: a pinned key made after a lagging floor is not
//     "expired" before it exists. Self-signatures dated later do not move it.
//   - A revocation of the key counts whatever its date (the file says the key
//     is revoked), as does a revocation of any subkey: a hard one of a
//     signing subkey (no reason, or compromised) withdraws what it signed,
//     and rpm 4.18 cannot import a key with a revoked subkey at all.
func keyPolicy(e *openpgp.Entity, now time.Time) *Error {
	at := now
	for _, sub := range e.Subkeys {
		if sub.PublicKey.CreationTime.After(at) {
			at = sub.PublicKey.CreationTime
		}
	}
	if e.PrimaryKey.CreationTime.After(at) {
		at = e.PrimaryKey.CreationTime
	}
	// rpm 4.18 imports version 4 keys only: a key rpmkeys cannot import
	// must not be one the native verifier trusts.
	if e.PrimaryKey.Version != 4 {
		return reject(KindKeyNotValid, "a version %d key (rpm reads version 4 keys only)", e.PrimaryKey.Version)
	}
	// Nor an ed25519 key under RFC 9580's algorithm 27: rpm 4.18 reads
	// ed25519 as EdDSA, algorithm 22, only.
	if e.PrimaryKey.PubKeyAlgo == packet.PubKeyAlgoEd25519 || slices.ContainsFunc(e.Subkeys, func(s openpgp.Subkey) bool {
		return s.PublicKey.PubKeyAlgo == packet.PubKeyAlgoEd25519
	}) {
		return reject(KindKeyNotValid, "an ed25519 key of algorithm 27 (rpm reads ed25519 keys as EdDSA, algorithm 22, only)")
	}
	if err := KeyStrength(e.PrimaryKey); err != nil {
		return err
	}
	for _, sub := range e.Subkeys {
		if sub.Sig.FlagsValid && sub.Sig.FlagSign {
			if err := KeyStrength(sub.PublicKey); err != nil {
				return err
			}
			if slices.ContainsFunc(sub.Revocations, hardRevocation) {
				return reject(KindKeyNotValid, "signing subkey %016X is revoked (no reason given, or compromised)", sub.PublicKey.KeyId)
			}
		}
		// Nor a key with a revoked subkey, whatever the reason: rpm 4.18
		// refuses to import it (measured with gpg's keys, a superseded
		// signing subkey), and every package it signed would be a
		// disagreement of the two verifiers.
		if len(sub.Revocations) > 0 {
			return reject(KindKeyNotValid, "subkey %016X is revoked (retired or superseded), and rpm 4.18 cannot import a key with a revoked subkey: export the key without that subkey", sub.PublicKey.KeyId)
		}
	}
	if len(e.Revocations) > 0 {
		return reject(KindKeyNotValid, "key is revoked")
	}
	if _, ok := e.SigningKey(at); !ok {
		return reject(KindKeyNotValid, "key has no valid signing key at %s (expired, revoked or not signing-capable)", at.UTC().Format(time.RFC3339))
	}
	return nil
}

// hardRevocation: a revocation that gives no reason, or says the key was
// compromised, withdraws every signature the key ever made (RFC 9580 §5.2.3.31).
func hardRevocation(sig *packet.Signature) bool {
	return sig.RevocationReason == nil || *sig.RevocationReason == packet.NoReason || *sig.RevocationReason == packet.KeyCompromised
}

// KeyStrength is the key policy of verify.md §1.2 (P7), for package keys
// and repositories' metadata keys alike.
func KeyStrength(pk *packet.PublicKey) *Error {
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
		bits, err := pk.BitLength()
		if err != nil || bits < 2048 {
			return reject(KindWeakAlgorithm, "RSA key of %d bits (at least 2048 required)", bits)
		}
		return nil
	case packet.PubKeyAlgoEd25519:
		return nil
	case packet.PubKeyAlgoEdDSA:
		eddsaKey, ok := pk.PublicKey.(*eddsa.PublicKey)
		if ok && eddsaKey.GetCurve().GetCurveName() == "ed25519" {
			return nil
		}
		if ok {
			return reject(KindWeakAlgorithm, "EdDSA key on curve %s (ed25519 only)", eddsaKey.GetCurve().GetCurveName())
		}
	}
	return reject(KindWeakAlgorithm, "public-key algorithm %d is not allowed (RSA ≥ 2048 or ed25519 only)", pk.PubKeyAlgo)
}

func fingerprint(pk *packet.PublicKey) string {
	return strings.ToUpper(hex.EncodeToString(pk.Fingerprint))
}
