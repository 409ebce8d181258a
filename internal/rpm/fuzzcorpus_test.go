package rpm_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"testing/cryptotest"
	"time"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
)

// TestWriteFuzzCorpus regenerates the committed seed corpora of this
// package's fuzz targets when PEDOS_WRITE_FUZZ_CORPUS=1, and otherwise checks
// that they are what it makes (testbin.SeedFile): real packages from
// rpmpack and from rpmbuild with rpmsign, signed by ed25519 and RSA keys,
// and headers one step from valid (verify.md §1.1, P8). Every seed is the
// same in every run: the keys come from fixed seeds, packages are built and
// signed at fixed times. It needs rpmbuild, rpmsign and gpg.
func TestWriteFuzzCorpus(t *testing.T) {
	testbin.SeedTools(t, filepath.Join("testdata", "fuzz"), "rpmbuild", "rpmsign", "gpg")
	cryptotest.SetGlobalRandom(t, 1) // the RSA key, which no seeded reader makes
	ed := fuzzSigner(t)
	rsa, err := testrepo.NewSigner(testrepo.KeySpec{Name: "fuzz-rsa", Algorithm: testrepo.RSA3072, Created: fuzzKeyTime})
	if err != nil {
		t.Fatal(err)
	}
	rsa.SignTime = ed.SignTime
	testbin.SeedFile(t, fuzzRSAKeyFile, rsa.PublicKeyArmored())
	untrusted := fuzzSeededSigner(t, "fuzz-untrusted", [32]byte{'u', 'n', 't', 'r', 'u', 's', 't', 'e', 'd'})
	sha1Signer := fuzzSigner(t)
	sha1Signer.Hash = crypto.SHA1

	good := fuzzPackage(t, ed)
	multi := buildFuzzPackage(t, testrepo.Package{Name: "fuzz-multi", Version: "2.0", Release: "3", Epoch: 7, Arch: "x86_64",
		Requires: []string{"bash"}, Provides: []string{"fuzz-api=2"}, Obsoletes: []string{"fuzz-old<2.0", "fuzz-legacy"}}, rsa, ed)
	rpmbuilt := rpmbuildFuzzPackage(t, testrepo.Package{Name: "fuzz-rpmbuild", Version: "1.0", Release: "1",
		Requires: []string{"bash"}, Obsoletes: []string{"fuzz < 1.0"}}, ed)
	rpmv3 := rpmbuildFuzzPackage(t, testrepo.Package{Name: "fuzz-rpmv3", Version: "1.0", Release: "1", Epoch: 2}, ed, "--rpmv3")
	v6 := v6StylePackage(t, good, ed)
	accepted := map[string][]byte{"rpmpack-ed25519": good, "rpmpack-rsa-ed25519-epoch-obsoletes": multi,
		"rpmbuild-rpmsign": rpmbuilt, "rpmbuild-rpmsign-rpmv3": rpmv3, "v6-signature-tags": v6}
	checkAccepted(t, accepted, ed, rsa)

	for name, pkg := range accepted {
		writeSeed(t, "FuzzVerify", name, pkg)
	}
	writeSeed(t, "FuzzVerify", "lead-only", good[:rpm.LeadBytes])
	writeSeed(t, "FuzzVerify", "unsigned", buildFuzzPackage(t, testrepo.Package{Name: "fuzz", Version: "1", Release: "1"}))
	writeSeed(t, "FuzzVerify", "untrusted-key", fuzzPackage(t, untrusted))
	writeSeed(t, "FuzzVerify", "sha1-signature", fuzzPackage(t, sha1Signer))

	for name, pkg := range map[string][]byte{"rpmpack-ed25519": good, "rpmpack-rsa-ed25519-epoch-obsoletes": multi, "rpmbuild": rpmbuilt} {
		_, sig, main, _, err := testrepo.Parts(pkg)
		if err != nil {
			t.Fatal(err)
		}
		writeSeed(t, "FuzzReadHeader", name+"-signature-header", sig, true)
		writeSeed(t, "FuzzReadHeader", name+"-main-header", main, false)
	}
	for name, pkg := range map[string][]byte{"rpmbuild-rpmv3": rpmv3, "v6-style": v6} {
		_, sig, _, _, err := testrepo.Parts(pkg)
		if err != nil {
			t.Fatal(err)
		}
		writeSeed(t, "FuzzReadHeader", name+"-signature-header", sig, true)
	}
	for name, header := range headerEdgeCases() {
		writeSeed(t, "FuzzReadHeader", name, header, false)
	}

	for name, m := range mutationSeeds(t, good) {
		writeSeed(t, "FuzzVerifyMutated", name, m.offset, m.mask, m.cut)
	}
}

func buildFuzzPackage(t *testing.T, p testrepo.Package, signers ...*testrepo.Signer) []byte {
	t.Helper()
	data, err := testrepo.Build(p, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rpmbuildFuzzPackage builds p with the real rpmbuild and signs it with
// rpmsign, at s's signing time: rpm's macros pin the build time, file times
// and build host, and gpg runs with its clock frozen.
func rpmbuildFuzzPackage(t *testing.T, p testrepo.Package, s *testrepo.Signer, signArgs ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("rpmbuild"); err != nil {
		t.Fatal("the corpus needs rpmbuild, rpmsign and gpg (scripts/install-deps.sh installs them)")
	}
	work := t.TempDir()
	home := filepath.Join(work, "home")
	epoch := fmt.Sprint(s.SignTime.Unix())
	// SOURCE_DATE_EPOCH cannot be passed in the environment (testrepo sets
	// it), so rpm's Lua sets it when rpmbuild first expands the build root,
	// as it parses the spec, before it takes the build time.
	macros := "%_buildhost testrepo\n%use_source_date_epoch_as_buildtime 1\n%clamp_mtime_to_source_date_epoch 1\n" +
		`%_buildrootdir %{lua: posix.setenv("SOURCE_DATE_EPOCH", "` + epoch + `")}%{_topdir}/BUILDROOT` + "\n"
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".rpmmacros"), []byte(macros), 0o644); err != nil {
		t.Fatal(err)
	}
	frozenClock := "--faked-system-time " + s.SignTime.UTC().Format("20060102T150405") + "!"
	path, err := testrepo.BuildWithRPMBuild(work, p, s, append([]string{"--define", "_gpg_sign_cmd_extra_args " + frozenClock}, signArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return withoutReservedSpace(t, data)
}

// withoutReservedSpace takes rpmsign's 4 KiB of reserved space (tag 1008,
// which the verifier ignores) out of the signature header. Go's fuzzer
// minimizes every input that finds new coverage in time quadratic in its
// length: from a 6 KB seed, a short run spends its time minimizing rather
// than fuzzing.
func withoutReservedSpace(t *testing.T, pkg []byte) []byte {
	t.Helper()
	lead, sig, main, payload, err := testrepo.Parts(pkg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := rpm.ReadHeader(bytes.NewReader(sig), rpm.TagHeaderSignatures)
	if err != nil {
		t.Fatal(err)
	}
	kept := slices.DeleteFunc(h.Entries, func(e rpm.Entry) bool { return e.Tag == rpm.SigTagReservedSpace })
	return testrepo.Join(lead, rpm.EncodeHeader(rpm.TagHeaderSignatures, kept), main, payload)
}

// v6StylePackage re-signs pkg with a signature header in the style of
// rpm 6: beside DSAHEADER and the header SHA-256 (273), the tags rpm 6
// added, the list of OpenPGP signatures (278, here the same signature in
// base64) and the header's SHA3-256 (279), with the 64-bit size (270) and
// reserved space (1008), and without the legacy SHA-1 and MD5.
func v6StylePackage(t *testing.T, pkg []byte, s *testrepo.Signer) []byte {
	t.Helper()
	lead, _, main, payload, err := testrepo.Parts(pkg)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.SignDetached(main)
	if err != nil {
		t.Fatal(err)
	}
	sha256Sum, sha3Sum := sha256.Sum256(main), sha3.Sum256(main)
	size := binary.BigEndian.AppendUint64(nil, uint64(len(main)+len(payload)))
	sigHeader := rpm.EncodeHeader(rpm.TagHeaderSignatures, []rpm.Entry{
		rpm.BinEntry(rpm.SigTagDSAHeader, sig),
		{Tag: rpm.SigTagLongSize, Type: 5, Count: 1, Data: size},
		rpm.StringEntry(rpm.SigTagSHA256Header, hex.EncodeToString(sha256Sum[:])),
		{Tag: 278, Type: 8, Count: 1, Data: append([]byte(base64.StdEncoding.EncodeToString(sig)), 0)},
		rpm.StringEntry(279, hex.EncodeToString(sha3Sum[:])),
		rpm.BinEntry(rpm.SigTagReservedSpace, make([]byte, 64)),
	})
	return testrepo.Join(lead, sigHeader, main, payload)
}

// checkAccepted makes sure the seeds meant to pass the verifier do, so that
// the fuzzer starts from the accepting path and not only from refusals.
func checkAccepted(t *testing.T, packages map[string][]byte, signers ...*testrepo.Signer) {
	t.Helper()
	dir := t.TempDir()
	for _, s := range signers {
		if _, err := s.WritePublicKey(dir); err != nil {
			t.Fatal(err)
		}
	}
	keyring, _, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, pkg := range packages {
		if _, err := (&rpm.Verifier{Keyring: keyring}).Verify(bytes.NewReader(pkg), &bytes.Buffer{}); err != nil {
			t.Errorf("seed %s is refused: %v", name, err)
		}
	}
}

// headerEdgeCases are main headers one step from a valid one (P8): each
// breaks one rule of ReadHeader. Those at the size caps only claim their
// size: the fuzzer needs the numbers, not 32 MiB of bytes.
func headerEdgeCases() map[string][]byte {
	valid := rpm.EncodeHeader(rpm.TagHeaderImmutable, []rpm.Entry{
		rpm.StringEntry(rpm.TagName, "fuzz"), rpm.StringEntry(rpm.TagVersion, "1"), testrepo.Int32Entry(rpm.TagEpoch, 7)})
	// valid: intro (16 bytes), index of 4 entries of 16 bytes (region,
	// name, version, epoch), store: "fuzz\0" at 0, "1\0" at 5, a byte of
	// padding, the epoch at 8, the region trailer at 12.
	const indexAt, trailerSizeAt = 16, 16 + 4*16 + 12 + 8
	field := func(entry, f int) int { return indexAt + 16*entry + 4*f }
	patched := func(header []byte, at int, v uint32) []byte {
		header = bytes.Clone(header)
		binary.BigEndian.PutUint32(header[at:], v)
		return header
	}
	// introAndRegion is a header cut after its region entry that claims
	// indexCount entries and a store of storeSize bytes.
	introAndRegion := func(indexCount, storeSize uint32) []byte {
		header := patched(valid[:indexAt+16], 8, indexCount)
		header = patched(header, 12, storeSize)
		return patched(header, field(0, 2), storeSize-16)
	}
	atCap := uint32(rpm.MaxHeaderBytes - indexAt - 16*rpm.MaxIndexEntries)
	return map[string][]byte{
		"index-count-0":        patched(valid, 8, 0),
		"index-count-over-max": introAndRegion(rpm.MaxIndexEntries+1, 16),
		"size-at-cap":          introAndRegion(rpm.MaxIndexEntries, atCap),
		"size-one-over-cap":    introAndRegion(rpm.MaxIndexEntries, atCap+1),
		"offset-past-store":    patched(valid, field(3, 2), 1<<24),
		"overlapping-entries":  patched(valid, field(2, 2), 3),
		"region-trailer-wrong": patched(valid, trailerSizeAt, binary.BigEndian.Uint32(valid[trailerSizeAt:])+16), // one entry fewer
	}
}

type mutation struct {
	offset uint16
	mask   byte
	cut    uint16
}

// mutationSeeds aim FuzzVerifyMutated's byte flips at the parts of a
// package each check guards: the lead, the signature header's structure,
// signature and digests (the MD5 one is ignored, so that flip is
// accepted), the main header's NEVRA and payload digest, and the payload.
func mutationSeeds(t *testing.T, pkg []byte) map[string]mutation {
	t.Helper()
	_, sig, main, payload, err := testrepo.Parts(pkg)
	if err != nil {
		t.Fatal(err)
	}
	sigAt, mainAt := rpm.LeadBytes, len(pkg)-len(payload)-len(main)
	flip := func(at int) mutation { return mutation{offset: uint16(at), mask: 0x01} }
	return map[string]mutation{
		"lead-magic":                 flip(0),
		"lead-signature-type":        flip(79),
		"signature-index-count":      flip(sigAt + 11),
		"signature-region-trailer":   flip(sigAt + len(sig) - 5),
		"signature-hash-algorithm":   flip(sigAt + dataOffset(sig, rpm.SigTagDSAHeader) + 5), // past the 2-byte packet header: version, type, key algorithm, hash
		"signature-sha256-digest":    flip(sigAt + dataOffset(sig, rpm.SigTagSHA256Header)),
		"signature-md5-ignored":      flip(sigAt + dataOffset(sig, rpm.SigTagMD5)),
		"main-header-name":           flip(mainAt + dataOffset(main, rpm.TagName)),
		"main-header-payload-digest": flip(mainAt + dataOffset(main, rpm.TagPayloadDigest)),
		"header-byte":                {offset: 700, mask: 0x80},
		"payload":                    flip(len(pkg) - 20),
		"truncated":                  {cut: 5},
	}
}

// dataOffset is where the data of tag starts in a header (which has it).
func dataOffset(header []byte, tag uint32) int {
	indexCount := int(binary.BigEndian.Uint32(header[8:]))
	for i := range indexCount {
		entry := header[16+16*i:]
		if binary.BigEndian.Uint32(entry) == tag {
			return 16 + 16*indexCount + int(binary.BigEndian.Uint32(entry[8:]))
		}
	}
	panic(fmt.Sprintf("header has no tag %d", tag))
}

// writeSeed writes one seed in go's corpus format, as go itself encodes
// these argument types, to testdata/fuzz/TARGET/NAME.
func writeSeed(t *testing.T, target, name string, args ...any) {
	t.Helper()
	content := "go test fuzz v1\n"
	for _, a := range args {
		switch a := a.(type) {
		case []byte:
			content += fmt.Sprintf("[]byte(%q)\n", a)
		case byte:
			content += fmt.Sprintf("byte(%q)\n", a)
		default: // bool, uint16
			content += fmt.Sprintf("%T(%v)\n", a, a)
		}
	}
	testbin.SeedFile(t, filepath.Join("testdata", "fuzz", target, name), []byte(content))
}
