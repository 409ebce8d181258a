package rpm

import (
	"encoding/binary"
	"errors"
)

// canonicalSignature re-encodes a verified v4 signature packet so that no
// unsigned byte passes through (verify.md §1.4, P5): the hashed part and
// the signature values stay as they are, the unhashed subpacket area —
// which anyone relaying the package can fill without breaking the
// signature — is replaced by a single issuer key ID subpacket (what rpm
// needs to find the key), and the packet header gets one fixed encoding.
// The caller verifies the result again.
func canonicalSignature(packet []byte, issuer uint64) ([]byte, error) {
	body, err := packetBody(packet)
	if err != nil {
		return nil, err
	}
	// v4 body: version, type, public-key algorithm, hash algorithm, hashed
	// area (2-byte length), unhashed area (2-byte length), hash prefix, values.
	if len(body) < 6 || body[0] != 4 {
		return nil, errors.New("not a version 4 signature packet")
	}
	unhashedAt := 6 + int(binary.BigEndian.Uint16(body[4:6]))
	if len(body) < unhashedAt+2 {
		return nil, errors.New("truncated signature packet")
	}
	rest := unhashedAt + 2 + int(binary.BigEndian.Uint16(body[unhashedAt:]))
	if len(body) < rest+2 {
		return nil, errors.New("truncated signature packet")
	}
	out := make([]byte, 0, len(body)+16)
	out = append(out, body[:unhashedAt]...)
	out = append(out, 0, 10, 9, 16) // unhashed area: 10 bytes, one issuer subpacket (type 16) of 9
	out = binary.BigEndian.AppendUint64(out, issuer)
	out = append(out, body[rest:]...)
	// An old-format packet header, tag 2, as gpg and rpmsign write it.
	if len(out) <= 0xffff {
		return append(binary.BigEndian.AppendUint16([]byte{0x89}, uint16(len(out))), out...), nil
	}
	return append(binary.BigEndian.AppendUint32([]byte{0x8a}, uint32(len(out))), out...), nil
}

// packetBody returns the body of the single OpenPGP packet in packet, with
// a definite length (old or new format) that covers exactly the rest.
func packetBody(packet []byte) ([]byte, error) {
	if len(packet) < 2 || packet[0]&0x80 == 0 {
		return nil, errors.New("not an OpenPGP packet")
	}
	var start, length int
	if packet[0]&0x40 == 0 { // old format: the low two bits give the length's size
		size := map[byte]int{0: 1, 1: 2, 2: 4}[packet[0]&3]
		if size == 0 || len(packet) < 1+size {
			return nil, errors.New("unsupported packet length")
		}
		start = 1 + size
		for _, b := range packet[1:start] {
			length = length<<8 | int(b)
		}
	} else {
		switch o := int(packet[1]); {
		case o < 192:
			start, length = 2, o
		case o < 224 && len(packet) >= 3:
			start, length = 3, (o-192)<<8+int(packet[2])+192
		case o == 255 && len(packet) >= 6:
			start, length = 6, int(binary.BigEndian.Uint32(packet[2:6]))
		default:
			return nil, errors.New("unsupported packet length")
		}
	}
	if length != len(packet)-start {
		return nil, errors.New("packet length does not match its data")
	}
	return packet[start:], nil
}
