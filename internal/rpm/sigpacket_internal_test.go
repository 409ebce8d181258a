package rpm

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// packetBody reads exactly one OpenPGP packet with a definite length, old or new format
// (RFC 9580 §4.2), and refuses anything else: the bytes it returns are what
// canonicalSignature re-encodes (verify.md §1.4, P5).
func TestPacketBodyFraming(t *testing.T) {
	filled := func(header []byte, n int) []byte { return append(header, bytes.Repeat([]byte{0xaa}, n)...) }
	for _, c := range []struct {
		name   string
		packet []byte
		body   int    // body length when accepted
		err    string // error text, "" when accepted
	}{
		{"empty", nil, 0, "not an OpenPGP packet"},
		{"one byte", []byte{0x88}, 0, "not an OpenPGP packet"},
		{"bit 7 clear", []byte{0x08, 0}, 0, "not an OpenPGP packet"},
		{"bit 7 clear, bit 0 set", []byte{0x01, 0}, 0, "not an OpenPGP packet"},
		{"old format, tag 0, empty body", []byte{0x80, 0}, 0, ""},
		{"old format, one-byte length, empty body", []byte{0x88, 0}, 0, ""},
		{"old format, one-byte length", filled([]byte{0x88, 5}, 5), 5, ""},
		{"old format, two-byte length", filled([]byte{0x89, 0, 5}, 5), 5, ""},
		{"old format, two-byte length cut", []byte{0x89, 0}, 0, "unsupported packet length"},
		{"old format, four-byte length", filled([]byte{0x8a, 0, 0, 0, 5}, 5), 5, ""},
		{"old format, four-byte length, empty body", []byte{0x8a, 0, 0, 0, 0}, 0, ""},
		{"old format, four-byte length cut", []byte{0x8a, 0, 0, 0}, 0, "unsupported packet length"},
		{"old format, indeterminate length", []byte{0x8b, 0}, 0, "unsupported packet length"},
		{"old format, length longer than the data", []byte{0x88, 5, 1, 2}, 0, "does not match"},
		{"old format, length shorter than the data", []byte{0x88, 1, 1, 2}, 0, "does not match"},
		{"new format, empty body", []byte{0xc2, 0}, 0, ""},
		{"new format, one-octet length 191", filled([]byte{0xc2, 191}, 191), 191, ""},
		{"new format, two-octet length 192", filled([]byte{0xc2, 192, 0}, 192), 192, ""},
		{"new format, two-octet length, largest", filled([]byte{0xc2, 223, 255}, 8383), 8383, ""},
		{"new format, two-octet length cut", []byte{0xc2, 192}, 0, "unsupported packet length"},
		{"new format, two-octet length, no data", []byte{0xc2, 192, 0}, 0, "does not match"},
		{"new format, partial length", filled([]byte{0xc2, 224}, 10), 0, "unsupported packet length"},
		{"new format, partial length, four more bytes", []byte{0xc2, 224, 0, 0, 0, 0}, 0, "unsupported packet length"},
		{"new format, five-octet length", filled([]byte{0xc2, 255, 0, 0, 0, 5}, 5), 5, ""},
		{"new format, five-octet length, empty body", []byte{0xc2, 255, 0, 0, 0, 0}, 0, ""},
		{"new format, five-octet length cut", []byte{0xc2, 255, 0, 0, 0}, 0, "unsupported packet length"},
	} {
		body, err := packetBody(c.packet)
		switch {
		case c.err == "" && (err != nil || len(body) != c.body || !bytes.Equal(body, c.packet[len(c.packet)-c.body:])):
			t.Errorf("%s: %d bytes, %v; want the last %d bytes", c.name, len(body), err, c.body)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v; want an error saying %q", c.name, err, c.err)
		}
	}
}

// canonicalSignature keeps a v4 body's hashed part and values, replaces the unhashed area by
// one issuer subpacket and writes one fixed old-format header, two-byte length up to 0xffff
// bytes, four-byte past it (verify.md §1.4, P5). Bodies it cannot take apart are refused.
func TestCanonicalSignatureEncoding(t *testing.T) {
	const issuer = 0x0102030405060708
	issuerArea := []byte{0, 10, 9, 16, 1, 2, 3, 4, 5, 6, 7, 8}
	oldFormat := func(body []byte) []byte { // the packet as gpg writes a short one
		return append(binary.BigEndian.AppendUint16([]byte{0x89}, uint16(len(body))), body...)
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	head := []byte{4, 0, 22, 8}     // v4, binary, EdDSA, SHA-256
	hashed := []byte{0, 3, 2, 5, 0} // hashed area: 3 bytes
	values := []byte{0xab, 0xcd, 0, 8, 0xff}

	for _, c := range []struct {
		name, want string // want: the error, or "" for success
		body, out  []byte // out: the re-encoded body when accepted
	}{
		{"areas and values", "", join(head, hashed, []byte{0, 2, 0xee, 0xee}, values), join(head, hashed, issuerArea, values)},
		{"empty areas, only the hash prefix", "", join(head, []byte{0, 0, 0, 0, 0xab, 0xcd}), join(head, []byte{0, 0}, issuerArea, []byte{0xab, 0xcd})},
		{"version 3", "not a version 4", join([]byte{3, 0, 22, 8}, []byte{0, 0, 0, 0, 0xab, 0xcd}), nil},
		{"five bytes", "not a version 4", []byte{4, 0, 22, 8, 0}, nil},
		{"six bytes: no unhashed length", "truncated", []byte{4, 0, 22, 8, 0, 0}, nil},
		{"hashed area past the end", "truncated", join(head, []byte{0, 9, 1, 2, 3}), nil},
		{"one byte of unhashed length", "truncated", join(head, hashed, []byte{0}), nil},
		{"no hash prefix", "truncated", join(head, hashed, []byte{0, 0}), nil},
		{"one byte of hash prefix", "truncated", join(head, hashed, []byte{0, 0, 0xab}), nil},
		{"unhashed area past the end", "truncated", join(head, hashed, []byte{0, 9, 0xee, 0xab, 0xcd}), nil},
	} {
		got, err := canonicalSignature(oldFormat(c.body), issuer)
		switch {
		case c.want == "" && (err != nil || !bytes.Equal(got, oldFormat(c.out))):
			t.Errorf("%s: % x, %v; want % x", c.name, got, err, oldFormat(c.out))
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v; want an error saying %q", c.name, err, c.want)
		}
	}
	if _, err := canonicalSignature([]byte{0x08, 0}, issuer); err == nil || !strings.Contains(err.Error(), "not an OpenPGP packet") {
		t.Errorf("not a packet: %v; want packetBody's error", err)
	}

	// The header's length form: 0xffff bytes re-encoded take the two-byte form, one more the four-byte.
	empty := join(head, []byte{0, 0, 0, 0})
	for _, size := range []int{0xffff, 0x10000} {
		body := append(bytes.Clone(empty), bytes.Repeat([]byte{0x55}, size-len(empty)-len(issuerArea)+2)...)
		got, err := canonicalSignature(join([]byte{0x8a}, binary.BigEndian.AppendUint32(nil, uint32(len(body))), body), issuer)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		wantHeader := binary.BigEndian.AppendUint16([]byte{0x89}, uint16(size))
		if size > 0xffff {
			wantHeader = binary.BigEndian.AppendUint32([]byte{0x8a}, uint32(size))
		}
		if !bytes.HasPrefix(got, wantHeader) || len(got) != len(wantHeader)+size {
			t.Errorf("%d bytes re-encoded: header % x, length %d; want header % x", size, got[:min(len(got), 5)], len(got), wantHeader)
		}
	}
}

// A signature go-crypto cannot parse is named for what it is: MD5 only when the v4 body says
// hash 1 (P7), otherwise go-crypto's reason, never "MD5" for another cause, and quoted: that
// reason can hold a byte of the packet, which no signature vouches for yet.
func TestUnsupportedSignatureSaysWhy(t *testing.T) {
	v := &Verifier{Keyring: &Keyring{}}
	for _, c := range []struct {
		name   string
		packet []byte
		want   string
	}{
		{"v4 with MD5", []byte{0x88, 6, 4, 0, 22, 1, 0, 0}, "signature uses hash MD5"},
		{"v4 with hash 99", []byte{0x88, 10, 4, 0, 22, 99, 0, 0, 0, 0, 1, 2}, `not supported: "hash function 99"`},
		{"version 7, byte 3 is 1", []byte{0x88, 10, 7, 0, 22, 1, 0, 0, 0, 0, 1, 2}, `not supported: "signature packet version 7"`},
		// An AEAD-encrypted data packet (tag 20) whose cipher byte is ESC: go-crypto names the byte.
		{"AEAD packet, cipher ESC", append([]byte{0xd4, 40, 1, 0x1b, 1, 6}, make([]byte, 36)...), `not supported: "unknown cipher: \x1b"`},
	} {
		_, _, err := v.checkSignature(c.packet, nil, time.Now())
		if e, ok := err.(*Error); !ok || e.Kind != KindWeakAlgorithm || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want a weak-algorithm refusal saying %s", c.name, err, c.want)
		}
		if i := strings.IndexFunc(err.Error(), func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
			t.Errorf("%s: the reason %q holds a control character", c.name, err)
		}
	}
}

// A signature with neither an issuer key ID nor an issuer fingerprint is refused, named, before
// any key is looked up (verify.md §1.2: the signer must be a pinned key, so it must be named).
func TestSignatureWithoutIssuerIsRefused(t *testing.T) {
	// A v4 binary-document signature, EdDSA over SHA-256: hashed area holding only its creation
	// time (subpacket 2), no unhashed area, the hash's first two bytes, then r and s as MPIs.
	body := []byte{4, 0x00, 22, 8, 0, 6, 5, 2, 0x67, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 8, 1, 0, 8, 1}
	v := &Verifier{Keyring: &Keyring{}}
	_, _, err := v.checkSignature(append([]byte{0x88, byte(len(body))}, body...), nil, time.Now())
	if e, ok := err.(*Error); !ok || e.Kind != KindBadSignature || !strings.Contains(err.Error(), "signature names no issuer key") {
		t.Errorf("checkSignature: %v; want a bad-signature refusal saying it names no issuer key", err)
	}
}
