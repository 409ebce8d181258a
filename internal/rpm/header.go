package rpm

import (
	"bytes"
	"encoding/binary"
	"sort"
)

// Header tags and types used by the verifier (rpm's rpmtag.h numbering).
const (
	TagHeaderSignatures = 62 // region tag of the signature header
	TagHeaderImmutable  = 63 // region tag of the main header (its signed part)

	// Signature header tags (verify.md §1: only 267, 268 and 273 are trusted).
	SigTagDSAHeader       = 267 // OpenPGP signature over the main header (DSA or EdDSA)
	SigTagRSAHeader       = 268 // OpenPGP signature over the main header (RSA)
	SigTagSHA1Header      = 269
	SigTagLongSize        = 270
	SigTagLongArchiveSize = 271
	SigTagSHA256Header    = 273 // hex SHA-256 of the main header
	SigTagSize            = 1000
	SigTagPGP             = 1002 // legacy header+payload signature, ignored
	SigTagMD5             = 1004
	SigTagGPG             = 1005 // legacy header+payload signature, ignored
	SigTagPayloadSize     = 1007
	SigTagReservedSpace   = 1008

	TagName              = 1000
	TagVersion           = 1001
	TagRelease           = 1002
	TagEpoch             = 1003
	TagArch              = 1022
	TagPayloadDigest     = 5092
	TagPayloadDigestAlgo = 5093
)

// Header entry types.
const (
	typeChar        = 1
	typeInt8        = 2
	typeInt16       = 3
	typeInt32       = 4
	typeInt64       = 5
	typeString      = 6
	typeBin         = 7
	typeStringArray = 8
	typeI18NString  = 9
)

// Limits on any header this package reads (verify.md §1.1).
const (
	MaxHeaderBytes   = 32 << 20
	MaxIndexEntries  = 65_535 // verify.md's cap is 100,000; rpm refuses more than 65,535 (P8)
	headerIntroBytes = 16     // magic, reserved, index count, data size
	entryBytes       = 16
	regionTrailerLen = 16
	minTag           = 100 // rpm's HEADER_I18NTABLE: the tags below are reserved
)

var headerMagic = []byte{0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0}

// Entry is one index entry of a header with the bytes it refers to.
type Entry struct {
	Tag   uint32
	Type  uint32
	Count uint32
	Data  []byte
}

// Header is a parsed, structurally valid header. Raw holds the exact bytes
// read (for the main header: the bytes the signatures and digest cover).
type Header struct {
	Raw     []byte
	Entries []Entry // without the region entry, sorted by tag
}

// EncodeHeader builds a header whose immutable region (regionTag) covers
// every entry. The entries must have distinct tags greater than regionTag;
// they are written sorted, with rpm's alignment for integer types. The
// canonical writer uses it for the fresh signature header (verify.md §1.4).
func EncodeHeader(regionTag uint32, entries []Entry) []byte {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Tag < sorted[j].Tag })
	var store bytes.Buffer
	offsets := make([]int, len(sorted))
	for i, e := range sorted {
		for store.Len()%valueBytes(e.Type) != 0 {
			store.WriteByte(0)
		}
		offsets[i] = store.Len()
		store.Write(e.Data)
	}
	indexCount := len(sorted) + 1
	trailerOffset := store.Len()
	store.Write(entryBytesOf(regionTag, typeBin, uint32(-int32(entryBytes*indexCount)), regionTrailerLen))

	var out bytes.Buffer
	out.Write(headerMagic)
	out.Write(binary.BigEndian.AppendUint32(nil, uint32(indexCount)))
	out.Write(binary.BigEndian.AppendUint32(nil, uint32(store.Len())))
	out.Write(entryBytesOf(regionTag, typeBin, uint32(trailerOffset), regionTrailerLen))
	for i, e := range sorted {
		out.Write(entryBytesOf(e.Tag, e.Type, uint32(offsets[i]), e.Count))
	}
	out.Write(store.Bytes())
	return out.Bytes()
}

func entryBytesOf(tag, typ, offset, count uint32) []byte {
	b := make([]byte, 0, entryBytes)
	for _, v := range []uint32{tag, typ, offset, count} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// valueBytes is the size of one value of a fixed-size type (1 for the
// byte types and bin), which is also the alignment rpm requires for the
// type's data. Strings have no fixed size, and alignment 1.
func valueBytes(typ uint32) int {
	switch typ {
	case typeInt16:
		return 2
	case typeInt32:
		return 4
	case typeInt64:
		return 8
	}
	return 1
}

// StringEntry and BinEntry build entries for EncodeHeader.
func StringEntry(tag uint32, s string) Entry {
	return Entry{Tag: tag, Type: typeString, Count: 1, Data: append([]byte(s), 0)}
}

// BinEntry builds a binary entry for EncodeHeader.
func BinEntry(tag uint32, b []byte) Entry {
	return Entry{Tag: tag, Type: typeBin, Count: uint32(len(b)), Data: b}
}

// PaddingAfterSignatureHeader is the number of zero bytes rpm puts between
// the signature header and the main header.
func PaddingAfterSignatureHeader(headerLen int) int {
	return (8 - headerLen%8) % 8
}
