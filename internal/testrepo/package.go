package testrepo

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/rpmpack"

	"pedos.dev/updates/internal/rpm"
)

// Package describes a test package. Zero values get sensible defaults.
type Package struct {
	Name, Version, Release string
	Epoch                  uint32 // 0: no epoch tag (rpm treats both alike)
	Arch                   string // default "noarch"
	// Relations like "libfoo>=2.0" or "bar".
	Requires, Provides, Conflicts, Obsoletes []string
	// Files maps absolute paths to contents; default: one small text file
	// /usr/share/NAME/NAME-VERSION-RELEASE.txt.
	Files map[string]string
	// PayloadSize adds /usr/share/NAME/payload.bin of that many
	// pseudo-random bytes (deterministic per NEVRA, so it does not compress),
	// at most MaxPayloadSize in a spec.
	PayloadSize int
	Compressor  string    // rpmpack compressor, default "gzip"
	BuildTime   time.Time // default: 2024-01-01 UTC, for reproducible packages
	// ExtraHeaderTags go into the signed main header as they are (for
	// negative tests such as a signature tag in the main header, P4).
	ExtraHeaderTags []rpm.Entry
}

// FileName is NAME-VERSION-RELEASE.ARCH.rpm.
func (p Package) FileName() string {
	return fmt.Sprintf("%s-%s-%s.%s.rpm", p.Name, p.Version, p.Release, p.arch())
}

func (p Package) arch() string {
	if p.Arch == "" {
		return "noarch"
	}
	return p.Arch
}

// MaxPayloadSize bounds a spec's size=: building a package takes about four
// times its payload in memory (a huge one ended the lab in the Go runtime's
// "out of memory").
const MaxPayloadSize = 1 << 30

// ParsePackageSpec reads the lab's one-line package specs:
//
//	NAME-[EPOCH:]VERSION-RELEASE [arch=A] [size=BYTES] [requires=R] [provides=R] [conflicts=R] [obsoletes=R]
//
// e.g. "hello-1.1-1 requires=libfoo>=2.0". Relation keys may repeat.
// size= is at most MaxPayloadSize.
func ParsePackageSpec(spec string) (Package, error) {
	fields := strings.Fields(spec)
	if len(fields) == 0 {
		return Package{}, errors.New("empty package spec")
	}
	nvr := fields[0]
	lastDash := strings.LastIndex(nvr, "-")
	if lastDash <= 0 {
		return Package{}, fmt.Errorf("package spec %q: want NAME-VERSION-RELEASE", spec)
	}
	secondDash := strings.LastIndex(nvr[:lastDash], "-")
	if secondDash <= 0 {
		return Package{}, fmt.Errorf("package spec %q: want NAME-VERSION-RELEASE", spec)
	}
	p := Package{Name: nvr[:secondDash], Version: nvr[secondDash+1 : lastDash], Release: nvr[lastDash+1:]}
	if epoch, version, ok := strings.Cut(p.Version, ":"); ok {
		n, err := strconv.ParseUint(epoch, 10, 32)
		if err != nil {
			return Package{}, fmt.Errorf("package spec %q: bad epoch %q: want a number", spec, epoch)
		}
		p.Epoch, p.Version = uint32(n), version
	}
	for _, field := range fields[1:] {
		key, value, ok := strings.Cut(field, "=")
		if !ok {
			return Package{}, fmt.Errorf("package spec %q: %q is not key=value", spec, field)
		}
		switch key {
		case "arch":
			p.Arch = value
		case "size":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return Package{}, fmt.Errorf("package spec %q: bad size %q", spec, value)
			}
			if n > MaxPayloadSize {
				return Package{}, fmt.Errorf("package spec %q: size %d is over %d bytes (1 GiB; building the package takes about four times that in memory)", spec, n, MaxPayloadSize)
			}
			p.PayloadSize = n
		case "requires":
			p.Requires = append(p.Requires, value)
		case "provides":
			p.Provides = append(p.Provides, value)
		case "conflicts":
			p.Conflicts = append(p.Conflicts, value)
		case "obsoletes":
			p.Obsoletes = append(p.Obsoletes, value)
		default:
			return Package{}, fmt.Errorf("package spec %q: unknown key %q", spec, key)
		}
	}
	// The parts name the package's file (NAME-VERSION-RELEASE.ARCH.rpm), which a lab run as
	// root writes: no path separators, no shell's or dnf's special characters.
	for _, part := range []struct {
		what, value string
		want        *regexp.Regexp
	}{{"name", p.Name, specName}, {"version", p.Version, specVersion}, {"release", p.Release, specVersion}, {"arch", p.Arch, specArch}} {
		if (part.value != "" || part.what != "arch") && !part.want.MatchString(part.value) {
			return Package{}, fmt.Errorf("package spec %q: %s %q: want %s", spec, part.what, part.value, part.want)
		}
	}
	return p, nil
}

var (
	specName    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)
	specVersion = regexp.MustCompile(`^[A-Za-z0-9._+~^]+$`)
	specArch    = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// Build returns the package signed by every signer (at most one RSA and
// one EdDSA signer, as the signature header has one tag for each), or
// unsigned when there are none.
func Build(p Package, signers ...*Signer) ([]byte, error) {
	lead, mainHeader, payload, archiveSize, err := buildUnsigned(p)
	if err != nil {
		return nil, err
	}
	extra := []rpm.Entry{Int32Entry(rpm.SigTagPayloadSize, archiveSize)}
	return Assemble(lead, mainHeader, payload, extra, signers...)
}

// WriteFile builds the package into dir/FileName() and returns the path.
func WriteFile(dir string, p Package, signers ...*Signer) (string, error) {
	data, err := Build(p, signers...)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, p.FileName())
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("testrepo: %w", err)
	}
	return path, nil
}

// Assemble makes a package file from its parts as rpmsign would: the lead,
// a signature header with each signer's signature over mainHeader, the
// header's SHA-1 and SHA-256, the MD5 and size of header+payload, plus the
// extra entries, then padding, mainHeader and payload. Tests use it to
// re-sign headers they have altered.
func Assemble(lead, mainHeader, payload []byte, extra []rpm.Entry, signers ...*Signer) ([]byte, error) {
	sha1Sum, sha256Sum := sha1.Sum(mainHeader), sha256.Sum256(mainHeader)
	md5Hash := md5.New()
	md5Hash.Write(mainHeader)
	md5Hash.Write(payload)
	entries := append([]rpm.Entry{
		rpm.StringEntry(rpm.SigTagSHA1Header, hex.EncodeToString(sha1Sum[:])),
		rpm.StringEntry(rpm.SigTagSHA256Header, hex.EncodeToString(sha256Sum[:])),
		Int32Entry(rpm.SigTagSize, uint32(len(mainHeader)+len(payload))),
		rpm.BinEntry(rpm.SigTagMD5, md5Hash.Sum(nil)),
	}, extra...)
	for _, s := range signers {
		sig, err := s.SignDetached(mainHeader)
		if err != nil {
			return nil, err
		}
		tag := uint32(rpm.SigTagDSAHeader)
		if s.isRSA() {
			tag = rpm.SigTagRSAHeader
		}
		entries = append(entries, rpm.BinEntry(tag, sig))
	}
	return Join(lead, rpm.EncodeHeader(rpm.TagHeaderSignatures, entries), mainHeader, payload), nil
}

// Join puts a package together from its parts, the inverse of Parts: the
// signature header is padded to 8 bytes as rpm expects.
func Join(lead, sigHeader, mainHeader, payload []byte) []byte {
	padding := make([]byte, rpm.PaddingAfterSignatureHeader(len(sigHeader)))
	return bytes.Join([][]byte{lead, sigHeader, padding, mainHeader, payload}, nil)
}

// Parts splits a package into lead, signature header, main header and
// payload (for byte surgery in tests). It checks the structure only.
func Parts(pkg []byte) (lead, sigHeader, mainHeader, payload []byte, err error) {
	if len(pkg) < rpm.LeadBytes {
		return nil, nil, nil, nil, fmt.Errorf("testrepo: package shorter than a lead")
	}
	r := bytes.NewReader(pkg[rpm.LeadBytes:])
	sig, err := rpm.ReadHeader(r, rpm.TagHeaderSignatures)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("testrepo: signature header: %w", err)
	}
	if _, err := r.Seek(int64(rpm.PaddingAfterSignatureHeader(len(sig.Raw))), 1); err != nil {
		return nil, nil, nil, nil, err
	}
	main, err := rpm.ReadHeader(r, rpm.TagHeaderImmutable)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("testrepo: main header: %w", err)
	}
	rest := pkg[len(pkg)-r.Len():]
	return pkg[:rpm.LeadBytes], sig.Raw, main.Raw, rest, nil
}

// buildUnsigned has rpmpack build the package and keeps its lead, main
// header and payload; the signature header is rebuilt by Assemble.
func buildUnsigned(p Package) (lead, mainHeader, payload []byte, archiveSize uint32, err error) {
	buildTime := p.BuildTime
	if buildTime.IsZero() {
		buildTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	meta := rpmpack.RPMMetaData{
		Name: p.Name, Version: p.Version, Release: p.Release, Epoch: rpmpack.NoEpoch,
		Arch: p.arch(), Summary: "PedOS test package " + p.Name, Description: "Built by internal/testrepo.",
		Licence: "MIT", BuildHost: "testrepo", Compressor: p.Compressor, BuildTime: buildTime,
	}
	if p.Epoch != 0 {
		meta.Epoch = p.Epoch
	}
	for _, rel := range []struct {
		into   *rpmpack.Relations
		values []string
	}{{&meta.Requires, p.Requires}, {&meta.Provides, p.Provides}, {&meta.Conflicts, p.Conflicts}, {&meta.Obsoletes, p.Obsoletes}} {
		for _, v := range rel.values {
			if err := rel.into.Set(v); err != nil {
				return nil, nil, nil, 0, fmt.Errorf("testrepo: relation %q: %w", v, err)
			}
		}
	}
	r, err := rpmpack.NewRPM(meta)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("testrepo: %w", err)
	}
	for path, content := range p.files() {
		r.AddFile(rpmpack.RPMFile{Name: path, Body: content, Mode: 0o644, Owner: "root", Group: "root", MTime: uint32(buildTime.Unix())})
	}
	for _, e := range p.ExtraHeaderTags {
		r.AddCustomTag(int(e.Tag), rawEntry(e))
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		return nil, nil, nil, 0, fmt.Errorf("testrepo: rpmpack: %w", err)
	}
	lead, sigHeader, mainHeader, payload, err := Parts(out.Bytes())
	if err != nil {
		return nil, nil, nil, 0, err
	}
	parsed, err := rpm.ReadHeader(bytes.NewReader(sigHeader), rpm.TagHeaderSignatures)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	for _, e := range parsed.Entries {
		if e.Tag == rpm.SigTagPayloadSize {
			archiveSize = binary.BigEndian.Uint32(e.Data)
		}
	}
	return lead, mainHeader, payload, archiveSize, nil
}

func (p Package) files() map[string][]byte {
	files := map[string][]byte{}
	if len(p.Files) == 0 {
		nvr := p.Name + "-" + p.Version + "-" + p.Release
		files["/usr/share/"+p.Name+"/"+nvr+".txt"] = []byte("test package " + nvr + "\n")
	}
	for path, content := range p.Files {
		files[path] = []byte(content)
	}
	if p.PayloadSize > 0 {
		seed := sha256.Sum256([]byte(p.FileName()))
		random := rand.NewChaCha8(seed)
		body := make([]byte, p.PayloadSize)
		random.Read(body)
		files["/usr/share/"+p.Name+"/payload.bin"] = body
	}
	return files
}

// rawEntry converts an entry to rpmpack's form (binary, string and int32
// entries are all the tests need).
func rawEntry(e rpm.Entry) rpmpack.IndexEntry {
	switch e.Type {
	case Int32Entry(0, 0).Type:
		values := make([]uint32, len(e.Data)/4)
		for i := range values {
			values[i] = binary.BigEndian.Uint32(e.Data[4*i:])
		}
		return rpmpack.EntryUint32(values)
	case rpm.StringEntry(0, "").Type:
		return rpmpack.EntryString(strings.TrimSuffix(string(e.Data), "\x00"))
	}
	return rpmpack.EntryBytes(e.Data)
}

// Int32Entry builds a one-value INT32 entry (type 4) for rpm.EncodeHeader
// (tests only: dom0 never builds one).
func Int32Entry(tag uint32, v uint32) rpm.Entry {
	return rpm.Entry{Tag: tag, Type: 4, Count: 1, Data: binary.BigEndian.AppendUint32(nil, v)}
}
