package rpm_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testrepo"
)

// withUnhashed adds a subpacket to the unhashed area of a new-format v4
// signature packet: bytes nobody signed, which a relay can add without
// breaking the signature.
func withUnhashed(t *testing.T, packet, subpacket []byte) []byte {
	t.Helper()
	if packet[0] != 0xC2 || packet[1] >= 192 || packet[2] != 4 {
		t.Fatalf("want a short new-format v4 signature packet, got % x", packet[:3])
	}
	body := packet[2:]
	at := 6 + int(binary.BigEndian.Uint16(body[4:6]))
	n := int(binary.BigEndian.Uint16(body[at:]))
	var out []byte
	out = append(out, body[:at]...)
	out = binary.BigEndian.AppendUint16(out, uint16(n+len(subpacket)))
	out = append(out, body[at+2:at+2+n]...)
	out = append(out, subpacket...)
	out = append(out, body[at+2+n:]...)
	return append([]byte{0xC2, 0xFF, 0, 0, byte(len(out) >> 8), byte(len(out))}, out...)
}

// P5: unsigned bytes in a valid signature's unhashed area never reach the
// canonical package, and the canonical form does not depend on them.
func TestCanonicalSignatureDropsUnhashedData(t *testing.T) {
	f := keys(t)
	good := build(t, spec, f.ed)
	l := split(t, good)
	sigHeader, err := rpm.ReadHeader(bytes.NewReader(l.sigHeader), rpm.TagHeaderSignatures)
	if err != nil {
		t.Fatal(err)
	}
	marker := []byte("UNSIGNED-BYTES\x1b[2J")
	notation := append([]byte{0x80, 0, 0, 0, 0, 3, 0, byte(len(marker)), 'x', '@', 'y'}, marker...)
	subpacket := append([]byte{byte(1 + len(notation)), 20}, notation...) // type 20: notation data
	var entries []rpm.Entry
	for _, e := range sigHeader.Entries {
		if e.Tag == rpm.SigTagDSAHeader {
			e.Data = withUnhashed(t, e.Data, subpacket)
			e.Count = uint32(len(e.Data))
		}
		entries = append(entries, e)
	}
	newSig := rpm.EncodeHeader(rpm.TagHeaderSignatures, entries)
	tampered := testrepo.Join(l.lead, newSig, l.mainHeader, l.payload)
	_, fromTampered, err := verify(f, tampered)
	if err != nil {
		t.Fatalf("a valid signature with extra unhashed data was refused: %v", err)
	}
	_, fromGood, err := verify(f, good)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(fromTampered, marker) {
		t.Error("the canonical package still carries the unsigned bytes")
	}
	if !bytes.Equal(fromTampered, fromGood) {
		t.Error("the canonical package depends on unsigned bytes of the signature")
	}
	if !rpmkeysAccepts(t, f, fromTampered) {
		t.Error("rpmkeys refuses the canonical package")
	}
}
