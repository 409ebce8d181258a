package rpm

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Verifier checks packages against a keyring with the policy of verify.md §1.
type Verifier struct {
	Keyring *Keyring
	// Now is the verification time for key and signature expiry; dom0
	// passes its time floor (verify.md §2.4). Zero means time.Now().
	Now time.Time
}

// VerifiedPackage is what the verifier learned about an accepted package.
type VerifiedPackage struct {
	Name, Version, Release, Arch string
	Epoch                        uint32
	HasEpoch                     bool
	SignerFingerprints           []string // primary-key fingerprints, one per signer of a header signature
	HeaderSHA256                 string   // hex, of the signed main header
	PayloadDigestAlgo            string   // "sha256", "sha384" or "sha512"
	PayloadDigest                string   // hex
	HeaderSize, PayloadSize      int64
	Obsoletes                    []Obsolete
}

// NEVRA is NAME-[EPOCH:]VERSION-RELEASE.ARCH.
func (p *VerifiedPackage) NEVRA() string {
	epoch := ""
	if p.HasEpoch {
		epoch = strconv.FormatUint(uint64(p.Epoch), 10) + ":"
	}
	return fmt.Sprintf("%s-%s%s-%s.%s", p.Name, epoch, p.Version, p.Release, p.Arch)
}

// FileName is the name the package should have, NAME-VERSION-RELEASE.ARCH.rpm;
// callers compare it with the name it came under (P9).
func (p *VerifiedPackage) FileName() string {
	return fmt.Sprintf("%s-%s-%s.%s.rpm", p.Name, p.Version, p.Release, p.Arch)
}

// Signature-header tags that may appear, with their types. Only 267, 268
// and 273 are trusted and re-emitted; 269 and the sizes must match
// (legacyDigests); the rest, which real signers add, are ignored and never
// re-emitted (verify.md §1.4: nothing else in the signature header is
// trusted). Anything else is rejected (P5, CVE-2021-3421 shape).
var knownSignatureTags = map[uint32]uint32{
	SigTagDSAHeader: typeBin, SigTagRSAHeader: typeBin, SigTagSHA1Header: typeString,
	SigTagLongSize: typeInt64, SigTagLongArchiveSize: typeInt64, SigTagSHA256Header: typeString,
	SigTagSize: typeInt32, SigTagMD5: typeBin, SigTagPayloadSize: typeInt32, SigTagReservedSpace: typeBin,
	// Header+payload signatures (rpmsign --rpmv3, RHEL 8 and older Fedora): covered by the
	// header signature and the payload digest, as the MD5 is (docs/rpm-verifier.md).
	SigTagPGP: typeBin, SigTagGPG: typeBin,
	274: typeStringArray, 275: typeInt32, // IMA file signatures and their length (rpmsign --signfiles)
	276: typeStringArray, 277: typeInt32, // fs-verity signatures and their algorithm (rpm ≥ 4.17)
	278: typeStringArray, 279: typeString, // rpm 6: OpenPGP header signatures again, SHA3-256 of the header
}

// Signature tags live in 256..299 in main-header numbering; none may be in
// the signed main header (P4, CVE-2021-20271 shape).
const firstSignatureTag, lastSignatureTag = 256, 299

// payloadHashes maps rpm's hash ids (tag 5093) to the hashes we accept.
var payloadHashes = map[uint32]struct {
	name string
	new  func() hash.Hash
}{8: {"sha256", sha256.New}, 9: {"sha384", sha512.New384}, 10: {"sha512", sha512.New}}

const copyBufferBytes = 256 << 10

// Verify reads one package from r in a single pass and writes the
// canonical package to canonical (io.Discard: not wanted) as it goes
// (verify.md §1.4): the
// lead, a fresh signature header holding only the header signatures that
// verified and the header SHA-256, then the signed main header and the
// payload unchanged. The written bytes are only good if Verify returns no
// error; on error the caller must discard them. Memory use is bounded by
// the header caps, whatever the payload size.
func (v *Verifier) Verify(r io.Reader, canonical io.Writer) (*VerifiedPackage, error) {
	if v.Keyring == nil {
		return nil, reject(KindUntrustedKey, "no keyring: no key is trusted")
	}
	now := v.Now
	if now.IsZero() {
		now = time.Now()
	}
	// A file that ends within the lead and does not begin as the magic does
	// is no RPM at all (checkLead says so); any other error is the reader's
	// own.
	lead := make([]byte, LeadBytes)
	if n, err := io.ReadFull(r, lead); err != nil &&
		!(errors.Is(err, io.ErrUnexpectedEOF) && !bytes.HasPrefix(leadMagic, lead[:min(n, len(leadMagic))])) {
		return nil, truncated(err)
	}
	if err := checkLead(lead); err != nil {
		return nil, err
	}
	sigHeader, err := ReadHeader(r, TagHeaderSignatures)
	if err != nil {
		return nil, fmt.Errorf("signature header: %w", err)
	}
	padding := make([]byte, PaddingAfterSignatureHeader(len(sigHeader.Raw)))
	if _, err := io.ReadFull(r, padding); err != nil {
		return nil, truncated(err)
	}
	// rpm writes zeros here and no signature covers these bytes: anything else is data
	// smuggled past the signatures (P5).
	if !bytes.Equal(padding, make([]byte, len(padding))) {
		return nil, malformed("non-zero padding after the signature header")
	}
	mainHeader, err := ReadHeader(r, TagHeaderImmutable)
	if err != nil {
		return nil, fmt.Errorf("main header: %w", err)
	}
	for _, e := range sigHeader.Entries {
		if typ, ok := knownSignatureTags[e.Tag]; !ok || typ != e.Type {
			return nil, reject(KindForbiddenTag, "signature header carries unexpected tag %d (type %d)", e.Tag, e.Type)
		}
	}
	for _, e := range mainHeader.Entries {
		if e.Tag >= firstSignatureTag && e.Tag <= lastSignatureTag {
			return nil, reject(KindForbiddenTag, "signature tag %d inside the main header", e.Tag)
		}
	}

	pkg := &VerifiedPackage{HeaderSize: int64(len(mainHeader.Raw))}
	newSigEntries, err := v.checkHeaderSignatures(sigHeader, mainHeader, now, pkg)
	if err != nil {
		return nil, err
	}
	statedSize, err := readLegacyDigests(sigHeader, mainHeader)
	if err != nil {
		return nil, err
	}
	payloadHash, err := v.readMainHeader(mainHeader, pkg)
	if err != nil {
		return nil, err
	}

	newSigHeader := EncodeHeader(TagHeaderSignatures, newSigEntries)
	for _, b := range [][]byte{canonicalLead(pkg), newSigHeader, make([]byte, PaddingAfterSignatureHeader(len(newSigHeader))), mainHeader.Raw} {
		if _, err := canonical.Write(b); err != nil {
			return nil, &Error{Kind: KindIO, Reason: "writing canonical package", Err: err}
		}
	}
	if err := v.streamPayload(r, canonical, payloadHash, pkg); err != nil {
		return nil, err
	}
	if statedSize >= 0 && statedSize != pkg.HeaderSize+pkg.PayloadSize {
		return nil, reject(KindDigestMismatch, "size of header and payload (tag 1000 or 270) does not match")
	}
	return pkg, nil
}

// readLegacyDigests checks the signature header's digests that the signed
// SHA-256 digests make redundant: the header SHA-1 (269), and returns the
// size of header and payload that tags 1000 and 270 state (-1: none), which
// Verify compares once it has read the payload. The canonical package drops
// them, but a package whose own digests are wrong is odd, so it is refused
// (verify.md §1.1), as rpmkeys would refuse it as received. The MD5 of
// header and payload (1004) is the exception: hashing every byte a third
// time would halve the verifier's speed for a digest the signed ones
// already cover (docs/rpm-verifier.md).
func readLegacyDigests(sigHeader, mainHeader *Header) (statedSize int64, err error) {
	if e, ok := sigHeader.find(SigTagSHA1Header); ok {
		sum := sha1.Sum(mainHeader.Raw)
		if err := compareHexDigest(e.Data, hex.EncodeToString(sum[:])+"\x00", "header SHA-1 digest (tag 269)"); err != nil {
			return 0, err
		}
	}
	statedSize = -1
	for _, tag := range []uint32{SigTagSize, SigTagLongSize} {
		e, ok := sigHeader.find(tag)
		if !ok {
			continue
		}
		if e.Count != 1 {
			return 0, malformed("size tag %d has count %d", tag, e.Count)
		}
		// The types were checked against knownSignatureTags: 1000 is an
		// int32, 270 an int64, so Data holds 4 or 8 bytes.
		var size int64
		if tag == SigTagLongSize {
			size = int64(binary.BigEndian.Uint64(e.Data))
		} else {
			size = int64(binary.BigEndian.Uint32(e.Data))
		}
		if size < 0 || statedSize >= 0 && statedSize != size {
			return 0, reject(KindDigestMismatch, "size tags 1000 and 270 disagree")
		}
		statedSize = size
	}
	return statedSize, nil
}

// canonicalLead is a fresh lead built from verified data only: rpm reads
// nothing but its magic, yet nothing unverified should pass through.
func canonicalLead(pkg *VerifiedPackage) []byte {
	lead := make([]byte, LeadBytes)
	copy(lead, leadMagic)
	lead[4] = 3                             // format 3.0, binary package (type 0)
	binary.BigEndian.PutUint16(lead[8:], 1) // archnum, as rpmbuild writes for noarch and x86_64
	copy(lead[10:10+65], pkg.Name+"-"+pkg.Version+"-"+pkg.Release)
	binary.BigEndian.PutUint16(lead[76:], 1) // osnum: Linux
	binary.BigEndian.PutUint16(lead[78:], 5) // header-style signature
	return lead
}

// checkHeaderSignatures applies verify.md §1.2 and §1.3 (header digest) and
// returns the entries of the canonical signature header.
func (v *Verifier) checkHeaderSignatures(sigHeader, mainHeader *Header, now time.Time, pkg *VerifiedPackage) ([]Entry, error) {
	var entries []Entry
	for _, tag := range []uint32{SigTagDSAHeader, SigTagRSAHeader} {
		e, ok := sigHeader.find(tag)
		if !ok {
			continue
		}
		sig, signer, err := v.checkSignature(e.Data, mainHeader.Raw, now)
		if err != nil {
			return nil, fmt.Errorf("signature in tag %d: %w", tag, err)
		}
		canonicalSig, err := canonicalSignature(e.Data, *sig.IssuerKeyId)
		if err != nil {
			return nil, reject(KindBadSignature, "signature in tag %d: %v", tag, err)
		}
		// The re-encoding changed only unsigned bytes; prove it.
		if _, again, err := v.checkSignature(canonicalSig, mainHeader.Raw, now); err != nil || again != signer {
			return nil, reject(KindBadSignature, "signature in tag %d does not verify once re-encoded", tag)
		}
		entries = append(entries, BinEntry(tag, canonicalSig))
		if !slices.Contains(pkg.SignerFingerprints, signer) { // one key's signature may sit in both tags
			pkg.SignerFingerprints = append(pkg.SignerFingerprints, signer)
		}
	}
	if len(entries) == 0 {
		return nil, reject(KindUnsigned, "package is not signed (no RSAHEADER or DSAHEADER signature)")
	}
	digest := sha256.Sum256(mainHeader.Raw)
	pkg.HeaderSHA256 = hex.EncodeToString(digest[:])
	e, ok := sigHeader.find(SigTagSHA256Header)
	if !ok {
		return nil, reject(KindDigestMismatch, "signature header lacks the header SHA-256 digest (tag 273)")
	}
	if err := compareHexDigest(e.Data, pkg.HeaderSHA256+"\x00", "header SHA-256 digest"); err != nil {
		return nil, err
	}
	return append(entries, StringEntry(SigTagSHA256Header, pkg.HeaderSHA256)), nil
}

// compareHexDigest compares a stated digest with the one computed, both
// lower-case hex as rpm writes them. Upper case is refused as odd, saying
// so: rpmkeys would take it, and "does not match" would suggest tampering.
func compareHexDigest(stated []byte, computed, what string) error {
	switch {
	case string(stated) == computed:
		return nil
	case bytes.EqualFold(stated, []byte(computed)):
		return malformed("%s is not lower-case hex, as rpm writes it", what)
	}
	return reject(KindDigestMismatch, "%s does not match", what)
}

// checkSignature verifies one OpenPGP signature over the main header and
// returns it with the signer's primary fingerprint.
func (v *Verifier) checkSignature(untrustedSig, signed []byte, now time.Time) (*packet.Signature, string, error) {
	r := bytes.NewReader(untrustedSig)
	p, err := packet.Read(r)
	var unsupported pgperrors.UnsupportedError
	if errors.As(err, &unsupported) { // go-crypto parses no MD5 signature, for one (P7)
		// A v4 body starts: version, type, public-key algorithm, hash algorithm (1: MD5).
		if body, berr := packetBody(untrustedSig); berr == nil && len(body) > 3 && body[0] == 4 && body[3] == 1 {
			return nil, "", reject(KindWeakAlgorithm, "signature uses hash MD5 (SHA-256 or stronger required)")
		}
		// Quoted: go-crypto's reason may hold a byte of the packet (an AEAD packet's cipher
		// byte, for one), and no signature has been checked yet.
		return nil, "", reject(KindWeakAlgorithm, "signature packet not supported: %q", string(unsupported))
	}
	if err != nil || r.Len() != 0 {
		return nil, "", reject(KindBadSignature, "not exactly one OpenPGP signature packet")
	}
	sig, ok := p.(*packet.Signature)
	if !ok || sig.SigType != packet.SigTypeBinary {
		return nil, "", reject(KindBadSignature, "not an OpenPGP binary-document signature")
	}
	// Allow-lists, not deny-lists: SHA-1, MD5 and DSA are refused, and so is anything new (P7).
	switch sig.Hash {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return nil, "", reject(KindWeakAlgorithm, "signature uses hash %s (SHA-256 or stronger required)", sig.Hash)
	}
	switch sig.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoEd25519:
	default:
		return nil, "", reject(KindWeakAlgorithm, "signature algorithm %d is not allowed (RSA or EdDSA only)", sig.PubKeyAlgo)
	}
	if sig.IssuerKeyId == nil {
		return nil, "", reject(KindBadSignature, "signature names no issuer key")
	}
	keyID := *sig.IssuerKeyId
	if len(v.Keyring.entities.KeysByIdUsage(keyID, packet.KeyFlagSign)) == 0 {
		if why, ok := v.Keyring.skipped[keyID]; ok {
			return nil, "", &Error{Kind: why.Kind, Reason: fmt.Sprintf("signature by key %016X, which the keyring skipped: %s", keyID, why.Reason)}
		}
		return nil, "", reject(KindUntrustedKey, "signature by key %016X not trusted", keyID)
	}
	// A signature is valid in itself only once its key exists (verify.md
	// §1.2); go-crypto's v1 verification does not check it, and would call
	// a key made after the verification time "expired".
	if slices.ContainsFunc(v.Keyring.entities.KeysById(keyID), func(k openpgp.Key) bool { return sig.CreationTime.Before(k.PublicKey.CreationTime) }) {
		return nil, "", reject(KindBadSignature, "signature by key %016X is dated %s, before the key was made", keyID, sig.CreationTime.UTC().Format(time.RFC3339))
	}
	// Judged at the later of the trusted time and the signature's own
	// creation time, as the repository metadata is (docs/freshness.md): a
	// key or signature that had expired by a time dom0 trusts is refused,
	// while a package signed after that time (dom0's clock behind the
	// signer's) is not, which go-crypto would call "expired".
	at := now
	if sig.CreationTime.After(at) {
		at = sig.CreationTime
	}
	config := &packet.Config{Time: func() time.Time { return at }}
	_, entity, err := openpgp.VerifyDetachedSignature(v.Keyring.entities, bytes.NewReader(signed), bytes.NewReader(untrustedSig), config)
	switch {
	case errors.Is(err, pgperrors.ErrKeyRevoked), errors.Is(err, pgperrors.ErrKeyExpired), errors.Is(err, pgperrors.ErrSignatureExpired):
		return nil, "", &Error{Kind: KindKeyNotValid, Reason: fmt.Sprintf("signature by key %016X not valid at %s", keyID, at.UTC().Format(time.RFC3339)), Err: err}
	case err != nil:
		// Quoted, as above: the reason is go-crypto's, about bytes not yet proven.
		return nil, "", reject(KindBadSignature, "signature by key %016X does not verify: %q", keyID, err.Error())
	}
	signers := openpgp.EntityList{entity}.KeysById(keyID)
	issuedBy := func(k openpgp.Key) bool { return bytes.Equal(k.PublicKey.Fingerprint, sig.IssuerFingerprint) }
	// A signature that names one key by its id and another by its fingerprint is not
	// clearly by a pinned key (P2, P6): refused rather than guessed at.
	if sig.IssuerFingerprint != nil && !slices.ContainsFunc(signers, issuedBy) {
		return nil, "", reject(KindBadSignature, "signature's issuer fingerprint does not match key %016X", keyID)
	}
	return sig, fingerprint(entity.PrimaryKey), nil
}

// readMainHeader takes NEVRA and the payload digest from the (verified)
// main header and returns the hash to run over the payload.
func (v *Verifier) readMainHeader(h *Header, pkg *VerifiedPackage) (hash.Hash, error) {
	for _, f := range []struct {
		tag  uint32
		into *string
	}{{TagName, &pkg.Name}, {TagVersion, &pkg.Version}, {TagRelease, &pkg.Release}, {TagArch, &pkg.Arch}} {
		e, ok := h.find(f.tag)
		if !ok || e.Type != typeString || len(e.Data) < 2 {
			return nil, malformed("main header lacks tag %d (name, version, release or arch)", f.tag)
		}
		*f.into = string(e.Data[:len(e.Data)-1])
	}
	if e, ok := h.find(TagEpoch); ok {
		if e.Type != typeInt32 || e.Count != 1 {
			return nil, malformed("epoch tag has type %d count %d", e.Type, e.Count)
		}
		pkg.Epoch, pkg.HasEpoch = binary.BigEndian.Uint32(e.Data), true
	}

	digest, hasDigest := h.find(TagPayloadDigest)
	algo, hasAlgo := h.find(TagPayloadDigestAlgo)
	if !hasDigest || !hasAlgo {
		return nil, reject(KindUnsigned, "payload is not covered by the signature (no payload digest, tags 5092/5093)")
	}
	if algo.Type != typeInt32 || algo.Count != 1 || digest.Type != typeStringArray {
		return nil, malformed("payload digest tags have the wrong type")
	}
	if digest.Count != 1 {
		// One is what rpm writes; the digest compared would be the first.
		return nil, malformed("payload digest tag holds %d values, not one", digest.Count)
	}
	alg, ok := payloadHashes[binary.BigEndian.Uint32(algo.Data)]
	if !ok {
		return nil, reject(KindWeakAlgorithm, "payload digest algorithm %d is not SHA-256, SHA-384 or SHA-512 (a weaker one, or a number rpm does not know)", binary.BigEndian.Uint32(algo.Data))
	}
	first, _, _ := bytes.Cut(digest.Data, []byte{0})
	payloadHash := alg.new()
	if len(first) != 2*payloadHash.Size() {
		return nil, malformed("payload digest has the wrong length for %s", alg.name)
	}
	if bytes.ContainsFunc(first, func(r rune) bool { return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') }) {
		// Compared as text after the payload; rpm writes lower-case hex.
		return nil, malformed("payload digest is not lower-case hex, as rpm writes it")
	}
	pkg.PayloadDigestAlgo, pkg.PayloadDigest = alg.name, string(first)
	pkg.Obsoletes = readObsoletes(h)
	return payloadHash, nil
}

// streamPayload copies the payload to canonical with a fixed buffer while
// hashing it, then compares the digest (verify.md §1.3, P3). The reader is
// wrapped so that io.CopyBuffer uses the buffer and no WriterTo of r.
func (v *Verifier) streamPayload(r io.Reader, canonical io.Writer, payloadHash hash.Hash, pkg *VerifiedPackage) error {
	n, err := io.CopyBuffer(io.MultiWriter(payloadHash, canonical), struct{ io.Reader }{r}, make([]byte, copyBufferBytes))
	pkg.PayloadSize = n
	if err != nil {
		return &Error{Kind: KindIO, Reason: "copying the payload", Err: err}
	}
	if hex.EncodeToString(payloadHash.Sum(nil)) != pkg.PayloadDigest {
		return reject(KindDigestMismatch, "payload digest does not match (payload modified after signing)")
	}
	return nil
}
