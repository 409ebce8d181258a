package rpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// LeadBytes is the size of the RPM lead, which rpm ignores except for its magic.
const LeadBytes = 96

var leadMagic = []byte{0xed, 0xab, 0xee, 0xdb}

// checkLead accepts only the lead of a binary RPM v3+ package with a
// header-style signature (verify.md §1: magic; P9 "not an RPM").
func checkLead(lead []byte) error {
	switch {
	case !bytes.Equal(lead[:4], leadMagic):
		return malformed("not an RPM file (bad lead magic)")
	case lead[4] != 3 || lead[5] != 0:
		return malformed("unsupported RPM format version %d.%d", lead[4], lead[5])
	case binary.BigEndian.Uint16(lead[6:8]) != 0:
		return malformed("not a binary package (source packages are not accepted)")
	case binary.BigEndian.Uint16(lead[78:80]) != 5:
		return malformed("lead announces signature type %d, want 5 (header-style)", binary.BigEndian.Uint16(lead[78:80]))
	}
	return nil
}

// ReadHeader reads one header from r and checks its structure strictly
// (verify.md §1.1, P8): bounded sizes, an immutable region with tag
// regionTag covering every entry, entries sorted by tag and unique, data
// in index order without overlap, aligned, inside the store, strings
// NUL-terminated. It reads exactly the header's bytes and no more.
func ReadHeader(r io.Reader, regionTag uint32) (*Header, error) {
	intro := make([]byte, headerIntroBytes)
	if _, err := io.ReadFull(r, intro); err != nil {
		return nil, truncated(err)
	}
	if !bytes.Equal(intro[:8], headerMagic) {
		return nil, malformed("bad header magic")
	}
	untrustedIndexCount := binary.BigEndian.Uint32(intro[8:12])
	untrustedStoreSize := binary.BigEndian.Uint32(intro[12:16])
	if untrustedIndexCount < 1 || untrustedIndexCount > MaxIndexEntries {
		return nil, malformed("header has %d index entries (allowed 1 to %d)", untrustedIndexCount, MaxIndexEntries)
	}
	total := uint64(headerIntroBytes) + uint64(untrustedIndexCount)*entryBytes + uint64(untrustedStoreSize)
	if total > MaxHeaderBytes {
		return nil, malformed("header of %d bytes is over the %d-byte limit", total, MaxHeaderBytes)
	}
	if untrustedStoreSize < regionTrailerLen {
		return nil, malformed("header data store of %d bytes cannot hold a region trailer", untrustedStoreSize)
	}
	// The buffer grows as bytes arrive, so a header that only claims to be
	// large costs no memory, and never past the claimed size, so one that
	// is large costs at most 1.5 times its size while it is read (a
	// bytes.Buffer reached twice the size, and 4.5 times with its garbage).
	size := int(total)
	raw := append(make([]byte, 0, min(size, 64<<10)), intro...)
	for len(raw) < size {
		if len(raw) == cap(raw) {
			raw = append(make([]byte, 0, min(2*cap(raw), size)), raw...)
		}
		n, err := r.Read(raw[len(raw):cap(raw)])
		raw = raw[:len(raw)+n]
		if err != nil && len(raw) < size {
			return nil, truncated(err)
		}
	}
	return parseHeader(raw, int(untrustedIndexCount), regionTag)
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed("file is truncated")
	}
	return &Error{Kind: KindIO, Reason: "reading package", Err: err}
}

func parseHeader(raw []byte, indexCount int, regionTag uint32) (*Header, error) {
	index := raw[headerIntroBytes : headerIntroBytes+indexCount*entryBytes]
	store := raw[headerIntroBytes+indexCount*entryBytes:]
	field := func(i, f int) uint32 { return binary.BigEndian.Uint32(index[i*entryBytes+4*f:]) }

	// The region entry comes first; its trailer is the last 16 bytes of the
	// store and claims every entry, so nothing sits outside the signed part.
	trailerOffset := len(store) - regionTrailerLen
	if field(0, 0) != regionTag || field(0, 1) != typeBin || field(0, 3) != regionTrailerLen ||
		field(0, 2) != uint32(trailerOffset) {
		return nil, malformed("header lacks a well-formed region tag %d as its first entry", regionTag)
	}
	trailer := store[trailerOffset:]
	if !bytes.Equal(trailer, entryBytesOf(regionTag, typeBin, uint32(-int32(entryBytes*indexCount)), regionTrailerLen)) {
		return nil, malformed("region %d does not cover the whole header", regionTag)
	}

	h := &Header{Raw: raw, Entries: make([]Entry, 0, indexCount-1)}
	previousTag, dataEnd := regionTag, uint64(0)
	for i := 1; i < indexCount; i++ {
		tag, typ, untrustedOffset, untrustedCount := field(i, 0), field(i, 1), uint64(field(i, 2)), field(i, 3)
		if tag <= previousTag {
			return nil, malformed("header tags are not sorted and unique (tag %d after %d)", tag, previousTag)
		}
		previousTag = tag
		// rpm reserves the tags below 100 but the region's and refuses a
		// header holding one; refused here too, so that such a package is
		// malformed, not a disagreement between the verifiers (P8).
		if tag < minTag {
			return nil, malformed("tag %d is below %d, which rpm reserves", tag, minTag)
		}
		if typ < typeChar || typ > typeI18NString {
			return nil, malformed("tag %d has invalid type %d", tag, typ)
		}
		if untrustedCount == 0 || (typ == typeString && untrustedCount != 1) {
			return nil, malformed("tag %d has invalid count %d", tag, untrustedCount)
		}
		if untrustedOffset < dataEnd || untrustedOffset%uint64(valueBytes(typ)) != 0 {
			return nil, malformed("tag %d has a misaligned or overlapping offset", tag)
		}
		size, ok := dataSize(typ, untrustedCount, store[:trailerOffset], untrustedOffset)
		if !ok {
			return nil, malformed("tag %d: data out of bounds", tag)
		}
		dataEnd = untrustedOffset + size
		h.Entries = append(h.Entries, Entry{Tag: tag, Type: typ, Count: untrustedCount, Data: store[untrustedOffset:dataEnd]})
	}
	return h, nil
}

// dataSize is the length of count values of type typ starting at offset in
// store, or false if they do not fit (strings must end with NUL in store).
func dataSize(typ, count uint32, store []byte, offset uint64) (uint64, bool) {
	if offset > uint64(len(store)) {
		return 0, false
	}
	rest := store[offset:]
	switch typ {
	case typeString, typeStringArray, typeI18NString:
		var size uint64
		for range count {
			n := bytes.IndexByte(rest[size:], 0)
			if n < 0 {
				return 0, false
			}
			size += uint64(n) + 1
		}
		return size, true
	}
	size := uint64(count) * uint64(valueBytes(typ))
	return size, size <= uint64(len(rest))
}

// find returns the entry with the given tag.
func (h *Header) find(tag uint32) (Entry, bool) {
	for _, e := range h.Entries {
		if e.Tag == tag {
			return e, true
		}
	}
	return Entry{}, false
}
