package rpm_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"pedos.dev/updates/internal/rpm"
)

// TestReadHeaderLimits puts each limit of a header's intro one past its
// bound and at it (P8): past it, the intro alone refuses the header; at it,
// ReadHeader goes on to read the data, which the test does not give.
func TestReadHeaderLimits(t *testing.T) {
	const intro = 16
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
