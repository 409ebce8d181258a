package attack

import (
	"encoding/binary"
	"fmt"
	"path"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testrepo"
)

// keyringDir is dom0's keyring for packages (updates.conf keyring=).
const keyringDir = "etc/pki/rpm-gpg"

// signer returns the key called name, made once per lab. When trusted, its
// public key is added to dom0's package keyring for the row (reset removes
// it): a second vendor key that dom0 trusts for packages, so that the
// crafted packages below are validly signed and only the attack itself can
// make dom0 refuse them.
func (e *Env) signer(name string, spec testrepo.KeySpec, trusted bool) (*testrepo.Signer, error) {
	s, ok := e.signers[name]
	if !ok {
		spec.Name = "PedOS attack key " + name
		var err error
		if s, err = testrepo.NewSigner(spec); err != nil {
			return nil, err
		}
		e.signers[name] = s
	}
	if trusted {
		if err := e.addDom0File(path.Join(keyringDir, "RPM-GPG-KEY-attack-"+name), s.PublicKeyArmored()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// vendor is a valid ed25519 key that dom0 trusts for packages.
func (e *Env) vendor() (*testrepo.Signer, error) {
	return e.signer("vendor", testrepo.KeySpec{}, true)
}

// buildPackage builds a package from a lab spec ("hello-1.1-1"), signed by
// signers.
func buildPackage(spec string, signers ...*testrepo.Signer) ([]byte, string, error) {
	p, err := testrepo.ParsePackageSpec(spec)
	if err != nil {
		return nil, "", err
	}
	b, err := testrepo.Build(p, signers...)
	return b, p.FileName(), err
}

// withMainHeader rebuilds a package with its main header changed by
// mutate and signed again by signer (nil: unsigned), as an attacker who
// holds a trusted key would: only the header's malformation is then wrong.
func withMainHeader(pkg []byte, mutate func(h []byte) []byte, signer *testrepo.Signer) ([]byte, error) {
	lead, _, main, payload, err := testrepo.Parts(pkg)
	if err != nil {
		return nil, err
	}
	main = mutate(append([]byte(nil), main...))
	var signers []*testrepo.Signer
	if signer != nil {
		signers = append(signers, signer)
	}
	return testrepo.Assemble(lead, main, payload, nil, signers...)
}

// withSignature rebuilds a package whose signature header carries sig in
// tag (plus the usual digests) and nothing else: for signatures an honest
// signer cannot make.
func withSignature(pkg []byte, tag uint32, sig []byte) ([]byte, error) {
	lead, _, main, payload, err := testrepo.Parts(pkg)
	if err != nil {
		return nil, err
	}
	return testrepo.Assemble(lead, main, payload, []rpm.Entry{rpm.BinEntry(tag, sig)})
}

// Main header layout (verify.md §1): magic and reserved (8 bytes), index
// count and data size (4 each), then 16-byte index entries (tag, type,
// offset, count), the first being the region entry.
const (
	headerIntro = 16
	indexEntry  = 16
)

func indexField(h []byte, entry, field int) []byte {
	off := headerIntro + entry*indexEntry + field*4
	return h[off : off+4]
}

// Header surgeries for P8; each takes and returns the main header's bytes.
var headerMalformations = []struct {
	label  string
	mutate func(h []byte) []byte
	want   string
}{
	{"tags out of order", func(h []byte) []byte {
		a, b := h[headerIntro+1*indexEntry:headerIntro+2*indexEntry], h[headerIntro+2*indexEntry:headerIntro+3*indexEntry]
		tmp := append([]byte(nil), a...)
		copy(a, b)
		copy(b, tmp)
		return h
	}, "not sorted and unique"},
	{"a duplicate tag", func(h []byte) []byte {
		copy(indexField(h, 2, 0), indexField(h, 1, 0))
		return h
	}, "not sorted and unique"},
	{"an offset out of bounds", func(h []byte) []byte {
		binary.BigEndian.PutUint32(indexField(h, 3, 2), 0x7fff0000)
		return h
	}, "out of bounds"},
	{"a huge count", func(h []byte) []byte {
		binary.BigEndian.PutUint32(indexField(h, 3, 3), 0x0fffffff)
		return h
	}, "count"},
	{"no immutable region", func(h []byte) []byte {
		binary.BigEndian.PutUint32(indexField(h, 0, 0), rpm.TagHeaderImmutable+1)
		return h
	}, "region"},
	{"an index count of 2^28", func(h []byte) []byte {
		binary.BigEndian.PutUint32(h[8:12], 1<<28)
		return h
	}, "index entries"},
}

// signaturePacketBody returns the offset of an OpenPGP packet's body (RFC
// 9580 §4.2), for surgery on a signature's algorithm octets.
func signaturePacketBody(sig []byte) (int, error) {
	if len(sig) < 2 || sig[0]&0x80 == 0 {
		return 0, fmt.Errorf("not an OpenPGP packet")
	}
	if sig[0]&0x40 == 0 { // legacy format: length type in the low bits
		return 1 + []int{1, 2, 4}[sig[0]&3], nil
	}
	switch l := sig[1]; {
	case l < 192:
		return 2, nil
	case l < 224:
		return 3, nil
	case l == 255:
		return 6, nil
	}
	return 0, fmt.Errorf("partial-length signature packet")
}

// withAlgorithms signs pkg's header with s, then rewrites the signature
// packet's public-key algorithm (pk, 0: keep) and hash algorithm (hash, 0:
// keep) octets: a DSA or MD5 signature as it would appear in a package.
func withAlgorithms(pkg []byte, s *testrepo.Signer, pk, hash byte) ([]byte, error) {
	_, _, main, _, err := testrepo.Parts(pkg)
	if err != nil {
		return nil, err
	}
	sig, err := s.SignDetached(main)
	if err != nil {
		return nil, err
	}
	body, err := signaturePacketBody(sig)
	if err != nil || len(sig) < body+4 || sig[body] != 4 {
		return nil, fmt.Errorf("unexpected signature packet from the test signer: %v", err)
	}
	if pk != 0 {
		sig[body+2] = pk
	}
	if hash != 0 {
		sig[body+3] = hash
	}
	return withSignature(pkg, rpm.SigTagDSAHeader, sig)
}
