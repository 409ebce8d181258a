package rpm_test

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/rpmver"
	"pedos.dev/updates/internal/testrepo"
)

const spec = "hello-1.1-1 requires=bash size=3000"

// layout finds the main header inside a package built by testrepo.
type layout struct {
	lead, sigHeader, mainHeader, payload []byte
	sigStart, mainStart                  int
}

func split(t testing.TB, data []byte) layout {
	t.Helper()
	lead, sig, main, payload, err := testrepo.Parts(data)
	if err != nil {
		t.Fatal(err)
	}
	return layout{lead, sig, main, payload, len(lead), len(data) - len(payload) - len(main)}
}

// headerSignature is the header signature (DSAHEADER) of a package.
func headerSignature(t testing.TB, data []byte) []byte {
	t.Helper()
	h, err := rpm.ReadHeader(bytes.NewReader(split(t, data).sigHeader), rpm.TagHeaderSignatures)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.Entries {
		if e.Tag == rpm.SigTagDSAHeader || e.Tag == rpm.SigTagRSAHeader {
			return e.Data
		}
	}
	t.Fatal("no header signature")
	return nil
}

// withMainHeader re-encodes the main header after edit changed its
// entries, and signs the result: what a key holder could publish.
func withMainHeader(t testing.TB, data []byte, edit func([]rpm.Entry) []rpm.Entry, signers ...*testrepo.Signer) []byte {
	t.Helper()
	l := split(t, data)
	h, err := rpm.ReadHeader(bytes.NewReader(l.mainHeader), rpm.TagHeaderImmutable)
	if err != nil {
		t.Fatal(err)
	}
	out, err := testrepo.Assemble(l.lead, rpm.EncodeHeader(rpm.TagHeaderImmutable, edit(h.Entries)), l.payload, nil, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withSigEntries rebuilds the signature header with extra entries.
func withSigEntries(t testing.TB, data []byte, extra []rpm.Entry, signers ...*testrepo.Signer) []byte {
	t.Helper()
	l := split(t, data)
	out, err := testrepo.Assemble(l.lead, l.mainHeader, l.payload, extra, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dropTag(tag uint32) func([]rpm.Entry) []rpm.Entry {
	return func(entries []rpm.Entry) []rpm.Entry {
		var kept []rpm.Entry
		for _, e := range entries {
			if e.Tag != tag {
				kept = append(kept, e)
			}
		}
		return kept
	}
}

func setTag(e rpm.Entry) func([]rpm.Entry) []rpm.Entry {
	return func(entries []rpm.Entry) []rpm.Entry { return append(dropTag(e.Tag)(entries), e) }
}

// editTag changes the main-header entry with the given tag.
func editTag(tag uint32, edit func(*rpm.Entry)) func([]rpm.Entry) []rpm.Entry {
	return func(entries []rpm.Entry) []rpm.Entry {
		for i := range entries {
			if entries[i].Tag == tag {
				entries[i].Data = bytes.Clone(entries[i].Data)
				edit(&entries[i])
			}
		}
		return entries
	}
}

// indexEntry is one main-header index entry as the bytes state it.
type indexEntry struct{ typ, offset, count uint32 }

// findEntry is the index of the first main-header entry after the region
// entry for which match holds, given the entry before it.
func (l layout) findEntry(t testing.TB, match func(e, previous indexEntry) bool) int {
	t.Helper()
	at := func(i int) indexEntry {
		b := l.mainHeader[16+16*i:]
		return indexEntry{binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:])}
	}
	for i := 1; i < int(binary.BigEndian.Uint32(l.mainHeader[8:])); i++ {
		if match(at(i), at(i-1)) {
			return i
		}
	}
	t.Fatal("the main header has no such entry")
	return 0
}

// patch returns a copy of data with b written at offset.
func patch(data []byte, offset int, b ...byte) []byte {
	out := bytes.Clone(data)
	copy(out[offset:], b)
	return out
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// rpmkeys verdicts: mustReject means rpm 4.18 must refuse the package too;
// stricter means rpm 4.18 accepts it and only the native policy refuses
// (recorded so a change in rpm shows up).
const (
	mustReject = "reject"
	stricter   = "accept"
)

type rejectCase struct {
	name, threat string
	data         func() []byte
	kind         rpm.Kind
	reason       string
	rpmkeys      string
}

// rejected says whether err is a rejection of the given kind whose message holds reason.
func rejected(err error, kind rpm.Kind, reason string) bool {
	rpmErr, ok := errors.AsType[*rpm.Error](err)
	return ok && rpmErr.Kind == kind && strings.Contains(err.Error(), reason)
}

func TestVerifyRejects(t *testing.T) {
	f := keys(t)
	good := build(t, spec, f.ed)
	l := split(t, good)
	entry := func(i int) int { return l.mainStart + 16 + 16*i } // offset of main-header index entry i
	headerDigest := []byte(fmt.Sprintf("%x", sha256.Sum256(l.mainHeader)))
	withSig := func(s *testrepo.Signer) func() []byte { return func() []byte { return build(t, spec, s) } }
	cases := []rejectCase{
		{"unsigned", "P1", func() []byte { return build(t, spec) }, rpm.KindUnsigned, "not signed", mustReject},
		{"untrusted key", "P2", withSig(f.untrusted), rpm.KindUntrustedKey, "not trusted", mustReject},
		{"payload flipped", "P3", func() []byte { return patch(good, len(good)-1, good[len(good)-1]^1) }, rpm.KindDigestMismatch, "payload digest does not match", mustReject},
		{"payload truncated", "P3", func() []byte { return good[:len(good)-10] }, rpm.KindDigestMismatch, "payload digest does not match", mustReject},
		{"payload appended", "P3", func() []byte { return append(bytes.Clone(good), 0) }, rpm.KindDigestMismatch, "payload digest does not match", mustReject},
		{"header flipped", "P3", func() []byte {
			return patch(good, bytes.Index(good, []byte("PedOS test package")), 'p')
		}, rpm.KindBadSignature, `does not verify: "openpgp: `, mustReject}, // go-crypto's reason, quoted
		{"header digest wrong", "P3", func() []byte {
			return patch(good, bytes.Index(good, headerDigest), headerDigest[0]^1)
		}, rpm.KindDigestMismatch, "header SHA-256 digest does not match", mustReject},
		{"header SHA-1 digest wrong", "P3", func() []byte {
			sum := []byte(fmt.Sprintf("%x", sha1.Sum(l.mainHeader)))
			return patch(good, bytes.Index(good, sum), sum[0]^1)
		}, rpm.KindDigestMismatch, "SHA-1 digest (tag 269) does not match", mustReject},
		{"size wrong", "P3", func() []byte {
			size := u32(uint32(len(l.mainHeader) + len(l.payload)))
			return patch(good, l.sigStart+bytes.LastIndex(l.sigHeader, size), u32(uint32(len(l.mainHeader)+len(l.payload)+1))...)
		}, rpm.KindDigestMismatch, "size of header and payload (tag 1000 or 270) does not match", stricter},
		{"signature tag in main header", "P4", func() []byte {
			sig, _ := f.ed.SignDetached([]byte("anything"))
			return withMainHeader(t, good, setTag(rpm.BinEntry(rpm.SigTagRSAHeader, sig)), f.ed)
		}, rpm.KindForbiddenTag, "signature tag 268 inside the main header", stricter},
		{"signature only in main header (CVE-2021-20271)", "P4", func() []byte {
			sig, _ := f.ed.SignDetached(l.mainHeader)
			return withMainHeader(t, good, setTag(rpm.BinEntry(rpm.SigTagDSAHeader, sig)))
		}, rpm.KindForbiddenTag, "signature tag 267 inside the main header", mustReject},
		{"unknown tag in signature header (CVE-2021-3421)", "P5", func() []byte {
			return withSigEntries(t, good, []rpm.Entry{rpm.StringEntry(5000, "evil")}, f.ed)
		}, rpm.KindForbiddenTag, "unexpected tag 5000", stricter},
		{"known signature tag with wrong type", "P5", func() []byte {
			return withSigEntries(t, good, []rpm.Entry{rpm.StringEntry(rpm.SigTagPayloadSize, "12")}, f.ed)
		}, rpm.KindForbiddenTag, "unexpected tag 1007", stricter},
		{"expired key", "P6", withSig(f.expired), rpm.KindKeyNotValid, "keyring skipped", mustReject},
		{"revoked key", "P6", withSig(f.revoked), rpm.KindKeyNotValid, "key is revoked", mustReject},
		{"subkey without back-signature (CVE-2021-3521)", "P6", withSig(f.unbound), rpm.KindUntrustedKey, "not trusted", mustReject},
		// The key file is skipped (TestKeyringWarnings says why), so the subkey is unknown.
		{"subkey bound by another primary key", "P6", withSig(f.boundByAnother), rpm.KindUntrustedKey, "not trusted", mustReject},
		{"subkey binding that does not verify", "P6", withSig(f.flippedBinding), rpm.KindUntrustedKey, "not trusted", mustReject},
		{"expired signature", "P6", func() []byte {
			s := *f.ed
			// Made after the key (an hour old), expired a minute later.
			s.SignTime, s.SignatureLifetime = f.ed.Entity.PrimaryKey.CreationTime.Add(time.Minute), time.Minute
			return build(t, spec, &s)
		}, rpm.KindKeyNotValid, "not valid at", mustReject},
		{"signature dated before its key was made", "P6", func() []byte {
			s := *f.ed
			s.SignTime = f.ed.Entity.PrimaryKey.CreationTime.Add(-48 * time.Hour)
			return build(t, spec, &s)
		}, rpm.KindBadSignature, "before the key was made", stricter},
		{"SHA-1 signature", "P7", func() []byte {
			s := *f.ed
			s.Hash = crypto.SHA1
			return build(t, spec, &s)
		}, rpm.KindWeakAlgorithm, "SHA-1", stricter},
		{"RSA 1024 key", "P7", withSig(f.weak), rpm.KindWeakAlgorithm, "RSA key of 1024 bits", mustReject},
		{"DSA signature", "P7", func() []byte {
			// Byte surgery: EdDSA (22) -> DSA (17); both carry two MPIs.
			i := l.sigStart + bytes.Index(l.sigHeader, headerSignature(t, good)[:8])
			return patch(good, i+4, 17) // new-format header (2 bytes), version, type, then algorithm
		}, rpm.KindWeakAlgorithm, "signature algorithm 17", mustReject},
		{"MD5 signature", "P7", func() []byte {
			i := l.sigStart + bytes.Index(l.sigHeader, headerSignature(t, good)[:8])
			return patch(good, i+5, 1) // the hash algorithm, after the public-key one: MD5
		}, rpm.KindWeakAlgorithm, "signature uses hash MD5", mustReject},
		{"MD5 payload digest", "P7", func() []byte {
			return withMainHeader(t, good, setTag(testrepo.Int32Entry(rpm.TagPayloadDigestAlgo, 1)), f.ed)
		}, rpm.KindWeakAlgorithm, "payload digest algorithm 1", stricter},
		{"no payload digest", "P3", func() []byte {
			return withMainHeader(t, withMainHeader(t, good, dropTag(rpm.TagPayloadDigest)), dropTag(rpm.TagPayloadDigestAlgo), f.ed)
		}, rpm.KindUnsigned, "payload is not covered", mustReject},
		{"unsorted tags", "P8", func() []byte {
			a, b := bytes.Clone(good[entry(1):entry(2)]), bytes.Clone(good[entry(2):entry(3)])
			return patch(patch(good, entry(1), b...), entry(2), a...)
		}, rpm.KindMalformed, "not sorted and unique", mustReject},
		{"duplicate tag", "P8", func() []byte { return patch(good, entry(2), good[entry(1):entry(2)]...) }, rpm.KindMalformed, "not sorted and unique", mustReject},
		{"offset out of bounds", "P8", func() []byte { return patch(good, entry(1)+8, u32(0x7fffff00)...) }, rpm.KindMalformed, "out of bounds", mustReject},
		{"huge count", "P8", func() []byte { return patch(good, entry(2)+12, u32(0x7fffffff)...) }, rpm.KindMalformed, "", mustReject},
		{"invalid type", "P8", func() []byte { return patch(good, entry(1)+4, u32(42)...) }, rpm.KindMalformed, "invalid type 42", mustReject},
		// Types are 1 (char) to 9 (i18n string): both neighbours of the range are refused.
		{"type 0", "P8", func() []byte { return patch(good, entry(1)+4, u32(0)...) }, rpm.KindMalformed, "invalid type 0", mustReject},
		{"type 10", "P8", func() []byte { return patch(good, entry(1)+4, u32(10)...) }, rpm.KindMalformed, "invalid type 10", mustReject},
		{"huge index count", "P8", func() []byte { return patch(good, l.mainStart+8, u32(0x00ffffff)...) }, rpm.KindMalformed, "index entries", mustReject},
		{"huge data size", "P8", func() []byte { return patch(good, l.mainStart+12, u32(0x7fffffff)...) }, rpm.KindMalformed, "over the", mustReject},
		{"missing immutable region", "P8", func() []byte { return patch(good, entry(0), u32(61)...) }, rpm.KindMalformed, "region tag 63", mustReject},
		{"region not covering the header", "P8", func() []byte {
			trailer := l.mainStart + len(l.mainHeader) - 16
			return patch(good, trailer+8, u32(uint32(0xffffffff-16*2+1))...)
		}, rpm.KindMalformed, "does not cover", mustReject},
		{"bad header magic", "P8", func() []byte { return patch(good, l.mainStart, 0x8f) }, rpm.KindMalformed, "bad header magic", mustReject},
		{"non-zero padding", "P8", func() []byte {
			// The signature header's length follows the signature's (its
			// MPIs lose leading zero bytes), so about one package in eight
			// needs no padding: sign at other times until one does.
			padded, pl := good, l
			for i := 1; pl.mainStart == rpm.LeadBytes+len(pl.sigHeader) && i <= 64; i++ {
				s := *f.ed
				s.SignTime = time.Now().Add(-time.Duration(i) * time.Minute)
				padded = build(t, spec, &s)
				pl = split(t, padded)
			}
			return patch(padded, pl.mainStart-1, 1)
		}, rpm.KindMalformed, "padding", stricter},
		{"truncated in lead", "P8", func() []byte { return good[:50] }, rpm.KindMalformed, "truncated", mustReject},
		{"truncated in the lead's magic", "P8", func() []byte { return good[:2] }, rpm.KindMalformed, "truncated", mustReject},
		{"truncated in signature header", "P8", func() []byte { return good[:rpm.LeadBytes+40] }, rpm.KindMalformed, "truncated", mustReject},
		{"truncated in main header", "P8", func() []byte { return good[:l.mainStart+100] }, rpm.KindMalformed, "truncated", mustReject},
		// Cut where the signature header's intro begins or inside its magic: truncated, not a
		// "bad header magic" read from bytes that never arrived (verify.md §1.1).
		{"truncated right after the lead", "P8", func() []byte { return good[:rpm.LeadBytes] }, rpm.KindMalformed, "truncated", mustReject},
		{"truncated in the signature header's magic", "P8", func() []byte { return good[:rpm.LeadBytes+4] }, rpm.KindMalformed, "truncated", mustReject},
		// The region entry must be exactly tag 63, type BIN, count 16, at the trailer: each
		// field wrong on its own is refused (verify.md §1.1: "a well-formed immutable region").
		{"region entry of type int32", "P8", func() []byte { return patch(good, entry(0)+4, u32(4)...) }, rpm.KindMalformed, "region tag 63", mustReject},
		{"region entry with count 17", "P8", func() []byte { return patch(good, entry(0)+12, u32(17)...) }, rpm.KindMalformed, "region tag 63", mustReject},
		{"region entry pointing before the trailer", "P8", func() []byte {
			return patch(good, entry(0)+8, u32(uint32(len(l.mainHeader)-16-16*int(binary.BigEndian.Uint32(l.mainHeader[8:]))-16-16))...)
		}, rpm.KindMalformed, "region tag 63", mustReject},
		{"not an RPM", "P9", func() []byte { return bytes.Repeat([]byte("not a package\n"), 20) }, rpm.KindMalformed, "not an RPM", mustReject},
		// Shorter than a lead, but no RPM at all: said so, not "truncated".
		{"a short file that is not an RPM", "P9", func() []byte { return []byte("8 bytes\n") }, rpm.KindMalformed, "not an RPM", mustReject},
		{"a file of two bytes that is not an RPM", "P9", func() []byte { return []byte("hi") }, rpm.KindMalformed, "not an RPM", mustReject},
		{"source package", "P9", func() []byte { return patch(good, 6, 0, 1) }, rpm.KindMalformed, "source packages", stricter},
		{"lead of another format version", "P9", func() []byte { return patch(good, 4, 4) }, rpm.KindMalformed, "format version 4.0", stricter},
		{"lead announcing another signature type", "P9", func() []byte { return patch(good, 78, 0, 1) }, rpm.KindMalformed, "signature type 1", mustReject},
		{"size tags disagree", "P3", func() []byte {
			longSize := rpm.Entry{Tag: rpm.SigTagLongSize, Type: 5 /* int64 */, Count: 1,
				Data: binary.BigEndian.AppendUint64(nil, uint64(len(l.mainHeader)+len(l.payload)+1))}
			return withSigEntries(t, good, []rpm.Entry{longSize}, f.ed)
		}, rpm.KindDigestMismatch, "size tags 1000 and 270 disagree", stricter},
		{"no header SHA-256", "P3", func() []byte {
			// Assemble always writes tag 273: build the signature header by hand.
			sig := headerSignature(t, good)
			sha1Sum := sha1.Sum(l.mainHeader)
			sigHeader := rpm.EncodeHeader(rpm.TagHeaderSignatures, []rpm.Entry{
				rpm.StringEntry(rpm.SigTagSHA1Header, fmt.Sprintf("%x", sha1Sum)), rpm.BinEntry(rpm.SigTagDSAHeader, sig)})
			return testrepo.Join(l.lead, sigHeader, l.mainHeader, l.payload)
		}, rpm.KindDigestMismatch, "lacks the header SHA-256", stricter},
		{"bytes after the signature packet", "P5", func() []byte {
			sig := append(bytes.Clone(headerSignature(t, good)), 0xc2, 0)
			return withSigEntries(t, good, []rpm.Entry{rpm.BinEntry(rpm.SigTagDSAHeader, sig)})
		}, rpm.KindBadSignature, "not exactly one OpenPGP signature packet", mustReject},
		{"issuer fingerprint naming another key", "P2", func() []byte {
			// Unhashed, so anyone relaying can add it; the key ID part (its last 8 bytes) still names the signer.
			fingerprint := bytes.Clone(f.ed.Entity.PrimaryKey.Fingerprint)
			fingerprint[0] ^= 1
			sig := withUnhashed(t, headerSignature(t, good), append([]byte{22, 33 /* issuer fingerprint */, 4}, fingerprint...))
			return withSigEntries(t, good, []rpm.Entry{rpm.BinEntry(rpm.SigTagDSAHeader, sig)})
		}, rpm.KindBadSignature, "issuer fingerprint does not match", stricter},
		{"text-mode signature", "P1", func() []byte {
			i := l.sigStart + bytes.Index(l.sigHeader, headerSignature(t, good)[:8])
			return patch(good, i+3, byte(packet.SigTypeText)) // new-format header (2 bytes), version, then type
		}, rpm.KindBadSignature, "binary-document", mustReject},
		{"empty package name", "P9", func() []byte {
			return withMainHeader(t, good, setTag(rpm.StringEntry(rpm.TagName, "")), f.ed)
		}, rpm.KindMalformed, "lacks tag 1000", stricter},
		{"epoch not an int32", "P8", func() []byte {
			return withMainHeader(t, good, setTag(rpm.StringEntry(rpm.TagEpoch, "1")), f.ed)
		}, rpm.KindMalformed, "epoch tag has type 6", mustReject},
		{"payload digest as a plain string", "P8", func() []byte {
			return withMainHeader(t, good, editTag(rpm.TagPayloadDigest, func(e *rpm.Entry) { e.Type = 6 /* string */ }), f.ed)
		}, rpm.KindMalformed, "payload digest tags have the wrong type", mustReject},
		{"SHA-1 payload digest", "P7", func() []byte {
			return withMainHeader(t, good, setTag(testrepo.Int32Entry(rpm.TagPayloadDigestAlgo, 2)), f.ed)
		}, rpm.KindWeakAlgorithm, "payload digest algorithm 2", stricter},
		{"payload digest one character short", "P8", func() []byte {
			return withMainHeader(t, good, editTag(rpm.TagPayloadDigest, func(e *rpm.Entry) {
				e.Data = append(bytes.Clone(e.Data[:len(e.Data)-2]), 0)
			}), f.ed)
		}, rpm.KindMalformed, "wrong length for sha256", mustReject},
		// Odd but not tampered: said so, not "does not match" (rpmkeys takes upper case).
		{"payload digest in upper case", "P8", func() []byte {
			return withMainHeader(t, good, editTag(rpm.TagPayloadDigest, func(e *rpm.Entry) { e.Data = bytes.ToUpper(e.Data) }), f.ed)
		}, rpm.KindMalformed, "payload digest is not lower-case hex", stricter},
		// Not hex at all, though lower case and of the right length: odd, said so
		// before the payload is read, not a mismatch after it.
		{"payload digest with a letter past f", "P8", func() []byte {
			return withMainHeader(t, good, editTag(rpm.TagPayloadDigest, func(e *rpm.Entry) {
				e.Data = append([]byte("g"), e.Data[1:]...)
			}), f.ed)
		}, rpm.KindMalformed, "payload digest is not lower-case hex", mustReject},
		{"header digest in upper case", "P8", func() []byte {
			return patch(good, bytes.Index(good, headerDigest), bytes.ToUpper(headerDigest)...)
		}, rpm.KindMalformed, "header SHA-256 digest is not lower-case hex", stricter},
		{"header SHA-1 digest in upper case", "P8", func() []byte {
			sum := []byte(fmt.Sprintf("%x", sha1.Sum(l.mainHeader)))
			return patch(good, bytes.Index(good, sum), bytes.ToUpper(sum)...)
		}, rpm.KindMalformed, "header SHA-1 digest (tag 269) is not lower-case hex", stricter},
		// rpm writes one value: a second is odd (the native check read only the first).
		{"two payload digests", "P8", func() []byte {
			return withMainHeader(t, good, editTag(rpm.TagPayloadDigest, func(e *rpm.Entry) {
				e.Count, e.Data = 2, append(bytes.Clone(e.Data), append(bytes.Repeat([]byte("0"), 64), 0)...)
			}), f.ed)
		}, rpm.KindMalformed, "payload digest tag holds 2 values", stricter},
		{"string with count 2", "P8", func() []byte {
			i := l.findEntry(t, func(e, _ indexEntry) bool { return e.typ == 6 /* string */ })
			return patch(good, entry(i)+12, u32(2)...)
		}, rpm.KindMalformed, "invalid count 2", mustReject},
		{"data overlapping the previous entry's", "P8", func() []byte {
			i := l.findEntry(t, func(e, previous indexEntry) bool { return e.typ == 6 /* string */ && e.offset > previous.offset })
			return patch(good, entry(i)+8, u32(binary.BigEndian.Uint32(good[entry(i-1)+8:]))...)
		}, rpm.KindMalformed, "misaligned or overlapping", mustReject},
		{"misaligned int32", "P8", func() []byte {
			// One value fewer, one byte later: misaligned, but not overlapping the next entry.
			i := l.findEntry(t, func(e, _ indexEntry) bool { return e.typ == 4 /* int32 */ && e.count >= 2 })
			offset, count := binary.BigEndian.Uint32(good[entry(i)+8:]), binary.BigEndian.Uint32(good[entry(i)+12:])
			return patch(good, entry(i)+8, append(u32(offset+1), u32(count-1)...)...)
		}, rpm.KindMalformed, "misaligned or overlapping", mustReject},
		{"int32 count beyond the store", "P8", func() []byte {
			i := l.findEntry(t, func(e, _ indexEntry) bool { return e.typ == 4 /* int32 */ })
			return patch(good, entry(i)+12, u32(0x10000000)...)
		}, rpm.KindMalformed, "out of bounds", mustReject},
	}
	for _, c := range cases {
		t.Run(c.threat+" "+c.name, func(t *testing.T) {
			data := c.data()
			pkg, _, err := verify(f, data)
			var rpmErr *rpm.Error
			if !errors.As(err, &rpmErr) {
				t.Fatalf("got %v, %v; want a %s rejection", pkg, err, c.kind)
			}
			if rpmErr.Kind != c.kind || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("got %s: %v; want %s containing %q", rpmErr.Kind, err, c.kind, c.reason)
			}
			if f.rpmkeys == nil {
				return
			}
			if accepted := rpmkeysAccepts(t, f, data); accepted != (c.rpmkeys == stricter) {
				t.Errorf("rpmkeys accepted=%v, want %s", accepted, c.rpmkeys)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	f := keys(t)
	cases := []struct {
		name    string
		data    []byte
		signers []*testrepo.Signer
		rpmkeys bool // rpm can import the key (go-crypto subkeys it cannot)
	}{
		{"ed25519", build(t, spec, f.ed), []*testrepo.Signer{f.ed}, true},
		{"rsa3072", build(t, "hello-2:1.1-1 arch=x86_64", f.rsa), []*testrepo.Signer{f.rsa}, true},
		{"both", build(t, spec, f.ed, f.rsa), []*testrepo.Signer{f.ed, f.rsa}, true},
		{"signing subkey", build(t, spec, f.subkey), []*testrepo.Signer{f.subkey}, false},
		// One signer, named once, though its signature sits in both tags.
		{"one signature in both tags", func() []byte {
			good := build(t, spec, f.ed)
			return withSigEntries(t, good, []rpm.Entry{rpm.BinEntry(rpm.SigTagRSAHeader, headerSignature(t, good))}, f.ed)
		}(), []*testrepo.Signer{f.ed}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkg, canonical, err := verify(f, c.data)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, s := range c.signers {
				want = append(want, s.Fingerprint())
			}
			if strings.Join(pkg.SignerFingerprints, ",") != strings.Join(want, ",") {
				t.Errorf("signers %v, want %v", pkg.SignerFingerprints, want)
			}
			checkCanonical(t, f, c.data, canonical, pkg, c.rpmkeys)
		})
	}
}

// checkCanonical: same signed header and payload, a signature header with
// only the region, the header signatures and 273, and it verifies again.
func checkCanonical(t *testing.T, f *fixture, original, canonical []byte, pkg *rpm.VerifiedPackage, rpmkeys bool) {
	t.Helper()
	o, c := split(t, original), split(t, canonical)
	if !bytes.Equal(o.mainHeader, c.mainHeader) || !bytes.Equal(o.payload, c.payload) {
		t.Error("canonical form changed the signed header or the payload")
	}
	sig, err := rpm.ReadHeader(bytes.NewReader(c.sigHeader), rpm.TagHeaderSignatures)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range sig.Entries {
		if e.Tag != rpm.SigTagDSAHeader && e.Tag != rpm.SigTagRSAHeader && e.Tag != rpm.SigTagSHA256Header {
			t.Errorf("canonical signature header has tag %d", e.Tag)
		}
	}
	again, again2, err := verify(f, canonical)
	if err != nil || again.NEVRA() != pkg.NEVRA() || !bytes.Equal(again2, canonical) {
		t.Errorf("canonical form does not verify to itself: %v", err)
	}
	if rpmkeys && f.rpmkeys != nil && !rpmkeysAccepts(t, f, canonical) {
		t.Error("strict rpmkeys rejects the canonical form")
	}
}

func TestVerifyRPMSign(t *testing.T) {
	if _, err := exec.LookPath("rpmsign"); err != nil {
		t.Skip("rpmbuild/rpmsign not installed")
	}
	f := keys(t)
	for _, c := range []struct {
		s        *testrepo.Signer
		signArgs []string
	}{{f.ed, nil}, {f.rsa, nil}, {f.rsa, []string{"--rpmv3"}}} { // --rpmv3: a header+payload signature too, as RHEL 8 signs
		s := c.s
		p, _ := testrepo.ParsePackageSpec("made-by-rpmbuild-1.0-1 requires=bash size=2000")
		path, err := testrepo.BuildWithRPMBuild(t.TempDir(), p, s, c.signArgs...)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pkg, canonical, err := verify(f, data)
		if err != nil {
			t.Fatalf("rpmsign package rejected: %v", err)
		}
		if pkg.FileName() != filepath.Base(path) || pkg.SignerFingerprints[0] != s.Fingerprint() {
			t.Errorf("got %s by %v", pkg.FileName(), pkg.SignerFingerprints)
		}
		if f.rpmkeys != nil && !rpmkeysAccepts(t, f, data) {
			t.Error("rpmkeys rejects the rpmsign package")
		}
		checkCanonical(t, f, data, canonical, pkg, true)
	}
}

// Tags real signers add to the signature header besides the header signatures — IMA file
// signatures (rpmsign --signfiles), fs-verity ones, rpm 6's OpenPGP list and SHA3-256, a
// header+payload signature — are not trusted (verify.md §1.4): the package is accepted on its
// header signature and digests, and the canonical copy drops them. rpmkeys checks a
// header+payload signature as received, so a wrong one (here: over other bytes) is a
// difference between the verifiers, as the MD5 is (TestVerifyIgnoresMD5).
func TestVerifyIgnoresOtherSignatureTags(t *testing.T) {
	f := keys(t)
	good := build(t, spec, f.ed)
	wrongLegacy, _ := f.ed.SignDetached([]byte("other bytes"))
	extra := []rpm.Entry{
		{Tag: 274, Type: 8, Count: 1, Data: []byte("0302a1b2\x00")}, testrepo.Int32Entry(275, 256),
		{Tag: 276, Type: 8, Count: 1, Data: []byte("AQID\x00")}, testrepo.Int32Entry(277, 1),
		{Tag: 278, Type: 8, Count: 1, Data: []byte("c2lnbmF0dXJl\x00")}, rpm.StringEntry(279, "00ff"),
		rpm.BinEntry(1002 /* PGP */, wrongLegacy), rpm.BinEntry(1005 /* GPG */, wrongLegacy),
		{Tag: 271 /* LONGARCHIVESIZE */, Type: 5 /* int64 */, Count: 1, Data: make([]byte, 8)},
	}
	data := withSigEntries(t, good, extra, f.ed)
	pkg, canonical, err := verify(f, data)
	if err != nil {
		t.Fatalf("package with IMA, fs-verity, rpm 6 and legacy signature tags: %v", err)
	}
	checkCanonical(t, f, data, canonical, pkg, true)
}

func TestKeyringWarnings(t *testing.T) {
	f := keys(t)
	var got []string
	for _, w := range f.warnings {
		got = append(got, w.Error())
	}
	all := strings.Join(got, "\n")
	for _, s := range []*testrepo.Signer{f.weak, f.expired, f.revoked, f.unbound, f.boundByAnother, f.flippedBinding} {
		if !strings.Contains(all, "RPM-GPG-KEY-"+s.Fingerprint()) {
			t.Errorf("no warning names the key file of %s:\n%s", s.Entity.PrimaryIdentity().Name, all)
		}
	}
	// A signing subkey without a valid binding (P6): go-crypto refuses the whole key, so its
	// file is skipped, for the cause the case makes (the signature value checked, not only
	// the packet's form).
	for s, cause := range map[*testrepo.Signer]string{
		f.unbound:        "signing subkey is missing cross-signature",
		f.boundByAnother: "EdDSA verification failure",
		f.flippedBinding: "EdDSA verification failure",
	} {
		i := slices.IndexFunc(got, func(w string) bool { return strings.Contains(w, "RPM-GPG-KEY-"+s.Fingerprint()) })
		if i < 0 || !strings.Contains(got[i], "subkey signature invalid: ") || !strings.Contains(got[i], cause) {
			t.Errorf("%s: want the file skipped as its subkey binding is invalid (%s):\n%s", s.Entity.PrimaryIdentity().Name, cause, all)
		}
	}
	if len(f.warnings) != 6 || len(f.keyring.Files()) != 3 {
		t.Errorf("%d warnings, %d key files loaded; want 6 and 3", len(f.warnings), len(f.keyring.Files()))
	}
}

func TestVerificationTime(t *testing.T) {
	f := keys(t)
	data := build(t, spec, f.ed)
	s := *f.ed
	s.SignatureLifetime = 24 * time.Hour
	expiring := build(t, spec, &s)
	for _, c := range []struct {
		data []byte
		now  time.Time
		ok   bool
	}{{data, time.Now(), true}, {expiring, time.Now(), true}, {expiring, time.Now().Add(48 * time.Hour), false},
		// dom0's clock (its time floor) ten minutes behind the signer's: a package signed a
		// minute ago is still valid, and one whose signature expired by the floor is not.
		{data, time.Now().Add(-10 * time.Minute), true}, {expiring, time.Now().Add(-10 * time.Minute), true}} {
		_, err := (&rpm.Verifier{Keyring: f.keyring, Now: c.now}).Verify(bytes.NewReader(c.data), io.Discard)
		if c.ok && err != nil || !c.ok && !rejected(err, rpm.KindKeyNotValid, "signature expired") {
			t.Errorf("at %v: %v, want ok=%v (else: key not valid, signature expired)", c.now, err, c.ok)
		}
	}
}

// loadKey loads a keyring holding s's public key alone, judged at floor.
func loadKey(t *testing.T, s *testrepo.Signer, floor time.Time) (*rpm.Keyring, []error) {
	t.Helper()
	dir := t.TempDir()
	if _, err := s.WritePublicKey(dir); err != nil {
		t.Fatal(err)
	}
	keyring, warnings, err := rpm.LoadKeyring(dir, floor)
	if err != nil {
		t.Fatal(err)
	}
	return keyring, warnings
}

// dom0's time floor two hours behind a key made an hour ago: the key loads and
// signs (it is judged at its own creation, not "expired" before it exists),
// while a revocation made with it still counts though it too is after the floor.
func TestKeyMadeAfterTheFloor(t *testing.T) {
	floor := time.Now().Add(-2 * time.Hour)
	for _, revoked := range []bool{false, true} {
		s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "newer than the floor", Revoked: revoked})
		if err != nil {
			t.Fatal(err)
		}
		keyring, warnings := loadKey(t, s, floor)
		if revoked {
			if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "key is revoked") {
				t.Errorf("revoked key: warnings %v, want one saying it is revoked", warnings)
			}
			continue
		}
		if len(warnings) != 0 {
			t.Fatalf("warnings %v", warnings)
		}
		if _, err := (&rpm.Verifier{Keyring: keyring, Now: floor}).Verify(bytes.NewReader(build(t, spec, s)), io.Discard); err != nil {
			t.Errorf("a package signed now by a key made after the floor: %v", err)
		}
		// Signed before the key was made, and before the floor too: that is
		// the cause, not an "expired" key (go-crypto's word for a key that
		// does not exist yet; the rpm black-box).
		early := *s
		early.SignTime = floor.Add(-time.Hour)
		if _, err := (&rpm.Verifier{Keyring: keyring, Now: floor}).Verify(bytes.NewReader(build(t, spec, &early)), io.Discard); !rejected(err, rpm.KindBadSignature, "before the key was made") {
			t.Errorf("a package signed before its key was made: %v, want refused saying so", err)
		}
	}
}

// A signing subkey revoked with no reason, or as compromised, withdraws everything it signed:
// its key file is skipped. One retired (or superseded) skips it too, for another reason: rpm
// 4.18 cannot import a key with a revoked subkey, and the native verifier trusts no key the
// rpmkeys cross-check lacks (the rpm black-box: every package the key signed was a
// "disagreement"). Its packages are refused naming the cause.
func TestRevokedSigningSubkey(t *testing.T) {
	floor := time.Now().Add(-2 * time.Minute)
	for reason, want := range map[packet.ReasonForRevocation]string{
		packet.NoReason:       "is revoked (no reason given, or compromised)",
		packet.KeyCompromised: "is revoked (no reason given, or compromised)",
		packet.KeyRetired:     "rpm 4.18 cannot import a key with a revoked subkey",
		packet.KeySuperseded:  "rpm 4.18 cannot import a key with a revoked subkey",
	} {
		s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "subkey signer", SigningSubkey: true})
		if err != nil {
			t.Fatal(err)
		}
		data := build(t, spec, s) // signed a minute ago, before the revocation
		sub := &s.Entity.Subkeys[len(s.Entity.Subkeys)-1]
		if err := s.Entity.RevokeSubkey(sub, reason, "test", nil); err != nil {
			t.Fatal(err)
		}
		keyring, warnings := loadKey(t, s, floor)
		if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), want) {
			t.Errorf("reason %d: warnings %v, want the file skipped: %s", reason, warnings, want)
		}
		if _, err := (&rpm.Verifier{Keyring: keyring, Now: floor}).Verify(bytes.NewReader(data), io.Discard); !rejected(err, rpm.KindKeyNotValid, "which the keyring skipped") || !strings.Contains(err.Error(), want) {
			t.Errorf("reason %d: a package the subkey signed: %v, want refused as signed by a skipped key, saying why", reason, err)
		}
	}
}

func TestCheckFileName(t *testing.T) {
	for name, ok := range map[string]bool{
		"bash-5.2.37-1.fc41.x86_64.rpm": true, "a.rpm": true, "g++-1^2~3.rpm": true,
		"": false, ".rpm": false, "-x.rpm": false, ".hidden.rpm": false, "../x.rpm": false, "a/b.rpm": false,
		"x.rpm\n": false, "x\x1b[31m.rpm": false, "x.RPM": false, "x y.rpm": false, "x.rpm.txt": false,
		strings.Repeat("a", 256) + ".rpm": true, strings.Repeat("a", 257) + ".rpm": false,
	} {
		err := rpm.CheckFileName(name)
		if ok && err != nil || !ok && !rejected(err, rpm.KindBadName, "does not match") {
			t.Errorf("CheckFileName(%q) = %v, want ok=%v", name, err, ok)
		}
		if err != nil && len(name) > 4 && strings.Contains(err.Error(), name) {
			t.Errorf("error echoes the name: %v", err)
		}
	}
}

// A package's file name must be its own (P9), with the epoch left out as
// rpmbuild leaves it out; another is a bad name, said with both.
func TestCheckNameMatches(t *testing.T) {
	p := &rpm.VerifiedPackage{Name: "hello", Version: "1.1", Release: "1", Arch: "noarch", Epoch: 2, HasEpoch: true}
	if err := p.CheckNameMatches("hello-1.1-1.noarch.rpm"); err != nil {
		t.Errorf("its own name: %v", err)
	}
	for _, name := range []string{"libfoo-9.0-1.noarch.rpm", "hello-2:1.1-1.noarch.rpm", "hello-1.1-1.x86_64.rpm", "hello-1.1-1.noarch.rpm.rpm"} {
		err := p.CheckNameMatches(name)
		if !rejected(err, rpm.KindBadName, `"hello-2:1.1-1.noarch": it would be "hello-1.1-1.noarch.rpm" (P9)`) {
			t.Errorf("%s: %v, want a bad name naming the package and its file name", name, err)
		}
	}
}

// The MD5 of header and payload (1004) is not checked (docs/rpm-verifier.md):
// a package whose MD5 alone is wrong is accepted, although rpmkeys refuses
// it as received, and its canonical form, without the MD5, passes rpmkeys.
// Recorded so that the difference stays known.
func TestVerifyIgnoresMD5(t *testing.T) {
	f := keys(t)
	good := build(t, spec, f.ed)
	l := split(t, good)
	sum := md5.Sum(append(bytes.Clone(l.mainHeader), l.payload...))
	data := patch(good, bytes.Index(good, sum[:]), sum[0]^1)
	pkg, canonical, err := verify(f, data)
	if err != nil {
		t.Fatalf("a wrong MD5 alone: %v", err)
	}
	if f.rpmkeys == nil {
		return
	}
	if rpmkeysAccepts(t, f, data) {
		t.Error("rpmkeys accepts a wrong MD5 as received: the verifier could check it without disagreeing")
	}
	checkCanonical(t, f, data, canonical, pkg, true)
}

// A key linked into the keyring is skipped with a warning naming it, and a
// directory (per-repository metadata keys) is passed over in silence.
func TestKeyringWarnsAboutLinks(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "linked"})
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, dir := t.TempDir(), t.TempDir()
	target, err := s.WritePublicKey(elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "RPM-GPG-KEY-linked")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "updates"), 0o755); err != nil {
		t.Fatal(err)
	}
	keyring, warnings, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), strconv.Quote(link)+": not a regular file") {
		t.Errorf("warnings %v, want one naming %s", warnings, link)
	}
	if n := len(keyring.Files()); n != 0 || len(keyring.Links) != 0 {
		t.Errorf("%d keys loaded through a link (links %v)", n, keyring.Links)
	}
}

// A link to a key file beside it, however written (Fedora's per-arch names
// for RPM-GPG-KEY-fedora-N-primary are bare names), adds no key and no
// warning: Links names it for the UpdateVM's copy. A link to a skipped key
// is no link to a key (the key's own warning says why); links to a
// directory, the parent, nothing, another link or a file elsewhere are
// warned about. The keyring is named with a trailing slash, as an
// administrator may write keyring = in updates.conf.
func TestKeyringLinksBeside(t *testing.T) {
	dir := t.TempDir()
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "primary"})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := s.WritePublicKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	weak := filepath.Join(dir, "RPM-GPG-KEY-weak")
	if err := os.WriteFile(weak, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "updates"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "updates", "key"), s.PublicKeyArmored(), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"RPM-GPG-KEY-primary-x86_64":  filepath.Base(primary),
		"RPM-GPG-KEY-primary-aarch64": "./" + filepath.Base(primary),
		"RPM-GPG-KEY-primary-abs":     primary,
		"RPM-GPG-KEY-primary-round":   "../" + filepath.Base(dir) + "/" + filepath.Base(primary),
		"RPM-GPG-KEY-primary-dotted":  dir + "/./" + filepath.Base(primary),
		"RPM-GPG-KEY-weak-x86_64":     "RPM-GPG-KEY-weak",
		"to-a-link":                   "RPM-GPG-KEY-primary-x86_64",
		"to-a-subdirectory's-file":    "updates/key",
		"to-a-directory":              "updates",
		"to-the-parent":               "..",
		"to-nothing":                  "RPM-GPG-KEY-gone",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	keyring, warnings, err := rpm.LoadKeyring(dir+"/", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, link := range []string{"x86_64", "aarch64", "abs", "round", "dotted"} {
		want[filepath.Join(dir, "RPM-GPG-KEY-primary-"+link)] = primary
	}
	if !maps.Equal(keyring.Links, want) {
		t.Errorf("links %v, want %v", keyring.Links, want)
	}
	if !slices.Equal(keyring.Files(), []string{primary}) {
		t.Errorf("files %v, want %s alone", keyring.Files(), primary)
	}
	var warned []string
	for _, w := range warnings {
		warned = append(warned, w.Error())
	}
	for _, name := range []string{"RPM-GPG-KEY-weak\"", "to-a-directory", "to-the-parent", "to-nothing", "to-a-link", "to-a-subdirectory's-file"} {
		if !slices.ContainsFunc(warned, func(w string) bool { return strings.Contains(w, name) }) {
			t.Errorf("no warning names %s: %q", name, warned)
		}
	}
	if len(warned) != 6 {
		t.Errorf("warnings %q, want six", warned)
	}
}

// The verified package's Obsoletes come from its signed header, one per
// Obsoletes: line with its range; a package without any has none.
func TestVerifyReadsObsoletes(t *testing.T) {
	f := keys(t)
	pkg, _, err := verify(f, build(t, "hello-ng-2.0-1 obsoletes=hello<2.0-3 obsoletes=hello-old", f.ed))
	if err != nil {
		t.Fatal(err)
	}
	want := []rpm.Obsolete{{Name: "hello", Flags: rpmver.SenseLess, Version: "2.0-3"}, {Name: "hello-old"}}
	if len(pkg.Obsoletes) != len(want) {
		t.Fatalf("obsoletes %+v, want %+v", pkg.Obsoletes, want)
	}
	for i, o := range pkg.Obsoletes {
		if o.Name != want[i].Name || o.Flags&(rpmver.SenseLess|rpmver.SenseGreater|rpmver.SenseEqual) != want[i].Flags || o.Version != want[i].Version {
			t.Errorf("obsoletes[%d] = %+v, want %+v", i, o, want[i])
		}
	}
	if plain, _, err := verify(f, build(t, spec, f.ed)); err != nil || plain.Obsoletes != nil {
		t.Errorf("a package without Obsoletes: %+v, %v", plain.Obsoletes, err)
	}
}

// A key file's every armored block is read, as rpmkeys --import reads them
// (RHEL ships several in one file): a package signed by the key of the
// second block passes both verifiers. A file's name is quoted in a
// warning: a newline in it cannot forge a line of its own.
func TestKeyringReadsEveryBlock(t *testing.T) {
	f := keys(t)
	dir := t.TempDir()
	two := filepath.Join(dir, "RPM-GPG-KEY-two")
	if err := os.WriteFile(two, append(f.ed.PublicKeyArmored(), f.untrusted.PublicKeyArmored()...), 0o644); err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(dir, "junk\nverified: fake")
	if err := os.WriteFile(odd, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyring, warnings, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	all := fmt.Sprint(warnings)
	if len(warnings) != 1 || strings.Contains(all, "\nverified") || !strings.Contains(all, strconv.Quote(odd)) {
		t.Errorf("warnings %q, want one naming the odd file, quoted", warnings)
	}
	if files := keyring.Files(); len(files) != 1 || files[0] != two {
		t.Fatalf("key files loaded: %v, want %s", files, two)
	}
	signed := build(t, spec, f.untrusted)
	if _, err := (&rpm.Verifier{Keyring: keyring}).Verify(bytes.NewReader(signed), io.Discard); err != nil {
		t.Errorf("a package signed by the second block's key: %v", err)
	}
	if _, err := os.Stat("/usr/bin/rpmkeys"); err != nil {
		t.Skip("rpmkeys not installed: the cross-check's agreement is not checked")
	}
	rpmkeys, _, err := pkgtool.NewRPMKeys(t.Context(), t.TempDir(), keyring.Files())
	if err != nil {
		t.Fatal(err)
	}
	defer rpmkeys.Close()
	path := filepath.Join(t.TempDir(), "p.rpm")
	if err := os.WriteFile(path, signed, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rpmkeys.CheckBatch(t.Context(), []string{path})[path]; err != nil {
		t.Errorf("rpmkeys with the same key file refuses it: %v", err)
	}
}

// An error of the reader within the lead (dom0's max_bytes budget, S8) is
// said as it is, not taken for "not an RPM file".
func TestLeadReadErrorIsKept(t *testing.T) {
	f := keys(t)
	over := errors.New("more than max_bytes")
	v := &rpm.Verifier{Keyring: f.keyring}
	_, err := v.Verify(io.MultiReader(strings.NewReader("0123456789"), iotest.ErrReader(over)), io.Discard)
	if !errors.Is(err, over) || !rejected(err, rpm.KindIO, "reading package") {
		t.Errorf("Verify = %v, want the reader's error", err)
	}
}

// Every entry type rpm defines is valid in a header, CHAR (1), the lowest, included (verify.md
// §1.1 "types ... valid"): a signed package with a CHAR entry is accepted, as rpmkeys accepts it.
func TestVerifyAcceptsEveryType(t *testing.T) {
	f := keys(t)
	good := build(t, spec, f.ed)
	data := withMainHeader(t, good, setTag(rpm.Entry{Tag: 5999 /* unknown to rpm */, Type: 1 /* char */, Count: 1, Data: []byte{'x'}}), f.ed)
	pkg, canonical, err := verify(f, data)
	if err != nil {
		t.Fatalf("package with a CHAR entry: %v", err)
	}
	checkCanonical(t, f, data, canonical, pkg, true)
}

// failingWriter fails its first write only.
type failingWriter struct{ failed bool }

func (w *failingWriter) Write(p []byte) (int, error) {
	if !w.failed {
		w.failed = true
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// The checks of Verify that the table of TestVerifyRejects does not reach: each must refuse
// with its own kind and reason (verify.md §1; threats.md P2, P3, P4).
func TestVerifyRefusesEdgeCases(t *testing.T) {
	f := keys(t)
	good := build(t, spec, f.ed)
	l := split(t, good)
	total := uint64(len(l.mainHeader) + len(l.payload))
	longSize := func(count uint32, values ...uint64) rpm.Entry {
		e := rpm.Entry{Tag: rpm.SigTagLongSize, Type: 5 /* int64 */, Count: count}
		for _, v := range values {
			e.Data = binary.BigEndian.AppendUint64(e.Data, v)
		}
		return e
	}
	for _, c := range []struct {
		name     string
		verifier *rpm.Verifier
		data     []byte
		out      io.Writer
		kind     rpm.Kind
		reason   string
	}{
		{"no keyring", &rpm.Verifier{}, good, io.Discard, rpm.KindUntrustedKey, "no keyring"},
		// A write that fails is the writer's error, even if later writes succeed.
		{"canonical writer fails once", &rpm.Verifier{Keyring: f.keyring}, good, &failingWriter{}, rpm.KindIO, "writing canonical package"},
		// A stated size of 0 is a size like any other: compared, and wrong here.
		{"size tag of 0", &rpm.Verifier{Keyring: f.keyring}, func() []byte {
			size := u32(uint32(total))
			return patch(good, l.sigStart+bytes.LastIndex(l.sigHeader, size), 0, 0, 0, 0)
		}(), io.Discard, rpm.KindDigestMismatch, "size of header and payload (tag 1000 or 270) does not match"},
		{"long size tag with count 2", &rpm.Verifier{Keyring: f.keyring},
			withSigEntries(t, good, []rpm.Entry{longSize(2, total, total)}, f.ed), io.Discard, rpm.KindMalformed, "size tag 270 has count 2"},
		// A stated 0 is compared with the other size tag too.
		{"size tag of 0 beside a right long size", &rpm.Verifier{Keyring: f.keyring}, func() []byte {
			data := withSigEntries(t, good, []rpm.Entry{longSize(1, total)}, f.ed)
			dl := split(t, data)
			return patch(data, dl.sigStart+bytes.LastIndex(dl.sigHeader, u32(uint32(total))), 0, 0, 0, 0)
		}(), io.Discard, rpm.KindDigestMismatch, "size tags 1000 and 270 disagree"},
		// The main header's identity and payload digest tags must each be present with their type.
		{"name tag of type bin", &rpm.Verifier{Keyring: f.keyring},
			withMainHeader(t, good, setTag(rpm.BinEntry(rpm.TagName, []byte("hello\x00"))), f.ed), io.Discard, rpm.KindMalformed, "lacks tag 1000"},
		{"payload digest without its algorithm", &rpm.Verifier{Keyring: f.keyring},
			withMainHeader(t, good, dropTag(rpm.TagPayloadDigestAlgo), f.ed), io.Discard, rpm.KindUnsigned, "payload is not covered"},
		{"payload digest algorithm with count 2", &rpm.Verifier{Keyring: f.keyring},
			withMainHeader(t, good, setTag(rpm.Entry{Tag: rpm.TagPayloadDigestAlgo, Type: 4, Count: 2, Data: append(u32(8), u32(8)...)}), f.ed),
			io.Discard, rpm.KindMalformed, "payload digest tags have the wrong type"},
		{"payload digest algorithm as a string", &rpm.Verifier{Keyring: f.keyring},
			withMainHeader(t, good, setTag(rpm.StringEntry(rpm.TagPayloadDigestAlgo, "8")), f.ed),
			io.Discard, rpm.KindMalformed, "payload digest tags have the wrong type"},
		// A read error inside the payload is the reader's, not a digest mismatch.
		{"read error in the payload", &rpm.Verifier{Keyring: f.keyring},
			nil, io.Discard, rpm.KindIO, "copying the payload"},
		// Tags 256 to 299 are signature tags in main-header numbering (P4): both ends are refused.
		{"signature tag 256 in the main header", &rpm.Verifier{Keyring: f.keyring},
			withMainHeader(t, good, setTag(rpm.BinEntry(256, []byte{1})), f.ed), io.Discard, rpm.KindForbiddenTag, "signature tag 256 inside the main header"},
		{"signature tag 299 in the main header", &rpm.Verifier{Keyring: f.keyring},
			withMainHeader(t, good, setTag(rpm.BinEntry(299, []byte{1})), f.ed), io.Discard, rpm.KindForbiddenTag, "signature tag 299 inside the main header"},
	} {
		var r io.Reader = bytes.NewReader(c.data)
		if c.data == nil { // the payload's first bytes, then an error
			r = io.MultiReader(bytes.NewReader(good[:len(good)-len(l.payload)+10]), iotest.ErrReader(errors.New("EIO")))
		}
		_, err := c.verifier.Verify(r, c.out)
		if !rejected(err, c.kind, c.reason) {
			t.Errorf("%s: %v; want %s saying %q", c.name, err, c.kind, c.reason)
		}
	}
	// Next to the signature tags, and with a right 64-bit size beside the 32-bit one, the
	// package is accepted.
	for name, data := range map[string][]byte{
		"tag 255 in the main header": withMainHeader(t, good, setTag(rpm.BinEntry(255, []byte{1})), f.ed),
		"tag 300 in the main header": withMainHeader(t, good, setTag(rpm.BinEntry(300, []byte{1})), f.ed),
		"right long size tag":        withSigEntries(t, good, []rpm.Entry{longSize(1, total)}, f.ed),
	} {
		if _, _, err := verify(f, data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The "signed before its key was made" rule at its bound (verify.md §1.2):
// OpenPGP times are whole seconds; a package signed in the second the key
// was made verifies, one signed the second before is refused.
func TestSignatureDatedAtItsKeysCreation(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "signs at once"})
	if err != nil {
		t.Fatal(err)
	}
	floor := time.Now().Add(-2 * time.Hour)
	keyring, warnings := loadKey(t, s, floor)
	if len(warnings) != 0 {
		t.Fatalf("warnings %v", warnings)
	}
	created := time.Unix(s.Entity.PrimaryKey.CreationTime.Unix(), 0)
	for signed, ok := range map[time.Time]bool{created: true, created.Add(-time.Second): false} {
		at := *s
		at.SignTime = signed
		_, err := (&rpm.Verifier{Keyring: keyring, Now: floor}).Verify(bytes.NewReader(build(t, spec, &at)), io.Discard)
		if ok && err != nil || !ok && !rejected(err, rpm.KindBadSignature, "before the key was made") {
			t.Errorf("signed %v after the key was made: %v, want ok=%v", signed.Sub(created), err, ok)
		}
	}
}
