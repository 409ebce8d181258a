package rpm_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"testing/iotest"

	"pedos.dev/updates/internal/rpm"
)

// TestReadHeaderLimits puts each limit of a header's intro one past its
// bound and at it (P8): past it, the intro alone refuses the header; at it,
// ReadHeader goes on to read the data, which the test does not give.
func TestReadHeaderLimits(t *testing.T) {
	const intro = 16
	// verify.md §1.1 states the caps: "header ≤ 32 MiB, index ≤ 100,000
	// entries"; rpm 4.18 refuses a header of more than 65,535 entries, so
	// that is the cap here (a package past it would pass only the native
	// verifier).
	if rpm.MaxHeaderBytes != 32<<20 || rpm.MaxIndexEntries != 65_535 {
		t.Errorf("caps %d bytes, %d entries; want 32 MiB (verify.md §1.1) and 65,535 (rpm's)", rpm.MaxHeaderBytes, rpm.MaxIndexEntries)
	}
	for _, c := range []struct {
		name              string
		indexCount, store uint32
		want              string
	}{
		{"index entries over the cap", rpm.MaxIndexEntries + 1, 16, "index entries"},
		{"index entries at the cap", rpm.MaxIndexEntries, 16, "truncated"},
		{"header over the byte limit", 1, rpm.MaxHeaderBytes - intro - 16 + 1, "over the"},
		{"header at the byte limit", 1, rpm.MaxHeaderBytes - intro - 16, "truncated"},
		{"store too small for the region trailer", 1, 15, "cannot hold a region trailer"},
		{"store holding just the region trailer", 1, 16, "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			header := []byte{0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0}
			header = binary.BigEndian.AppendUint32(header, c.indexCount)
			header = binary.BigEndian.AppendUint32(header, c.store)
			_, err := rpm.ReadHeader(bytes.NewReader(header), rpm.TagHeaderImmutable)
			if !rejected(err, rpm.KindMalformed, c.want) {
				t.Errorf("got %v, want malformed: …%s…", err, c.want)
			}
		})
	}
}

// A header is read into a buffer that grows as its bytes arrive but never
// past the size its intro claims: a bytes.Buffer grew to twice a large
// header's size (4.5 times with its garbage), before any signature is
// checked (P8, verify.md §1.1).
func TestReadHeaderBufferFitsTheHeader(t *testing.T) {
	header := rpm.EncodeHeader(rpm.TagHeaderImmutable, []rpm.Entry{rpm.BinEntry(rpm.TagName+1, make([]byte, 300<<10))})
	for name, r := range map[string]io.Reader{
		"whole":         bytes.NewReader(header),
		"byte by byte":  iotest.OneByteReader(bytes.NewReader(header)),
		"data with EOF": iotest.DataErrReader(bytes.NewReader(header)),
	} {
		h, err := rpm.ReadHeader(r, rpm.TagHeaderImmutable)
		if err != nil || !bytes.Equal(h.Raw, header) || cap(h.Raw) != len(header) {
			t.Errorf("%s: %v; read %d bytes into a buffer of %d, want the header's %d in one of that size", name, err, len(h.Raw), cap(h.Raw), len(header))
		}
	}
	if _, err := rpm.ReadHeader(iotest.OneByteReader(bytes.NewReader(header[:len(header)-1])), rpm.TagHeaderImmutable); !rejected(err, rpm.KindMalformed, "truncated") {
		t.Errorf("a header one byte short: %v, want malformed: file is truncated", err)
	}
}

// rpm reserves the tags below 100 (but for the region's, which comes
// first) and refuses a header holding one, so the native parser does too
// (P8): such a package is malformed, not a disagreement between verifiers.
func TestReadHeaderReservedTags(t *testing.T) {
	for _, tag := range []uint32{64, 99, 100} {
		header := rpm.EncodeHeader(rpm.TagHeaderImmutable, []rpm.Entry{rpm.StringEntry(tag, "x")})
		_, err := rpm.ReadHeader(bytes.NewReader(header), rpm.TagHeaderImmutable)
		if reserved := tag < 100; reserved != rejected(err, rpm.KindMalformed, "which rpm reserves") || !reserved && err != nil {
			t.Errorf("tag %d: %v", tag, err)
		}
	}
}

// A string's data must end with a NUL inside the data store, before the region trailer
// (verify.md §1.1: "string tags NUL-terminated"; P8): a last string that runs into the
// trailer is out of bounds.
func TestReadHeaderStringWithoutNUL(t *testing.T) {
	for _, typ := range []uint32{6 /* string */, 8 /* string array */, 9 /* i18n string */} {
		header := rpm.EncodeHeader(rpm.TagHeaderImmutable, []rpm.Entry{{Tag: rpm.TagName, Type: typ, Count: 1, Data: []byte("abc")}})
		if _, err := rpm.ReadHeader(bytes.NewReader(header), rpm.TagHeaderImmutable); !rejected(err, rpm.KindMalformed, "data out of bounds") {
			t.Errorf("type %d without its NUL: got %v, want malformed: data out of bounds", typ, err)
		}
	}
	// The same with its NUL is a header.
	header := rpm.EncodeHeader(rpm.TagHeaderImmutable, []rpm.Entry{rpm.StringEntry(rpm.TagName, "abc")})
	if h, err := rpm.ReadHeader(bytes.NewReader(header), rpm.TagHeaderImmutable); err != nil || len(h.Entries) != 1 || string(h.Entries[0].Data) != "abc\x00" {
		t.Errorf("a NUL-terminated string: %+v, %v", h, err)
	}
}
