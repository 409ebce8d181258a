package repometa

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/rpmpack"

	"pedos.dev/updates/internal/rpmver"
)

// Test times: metadata is published at day 0 and later; the program was
// built before that.
var (
	day0      = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	buildTime = day0.Add(-30 * 24 * time.Hour)
)

// nevra parses "name-[epoch:]version-release.arch".
func nevra(t testing.TB, s string) NEVRA {
	t.Helper()
	dot := len(s) - len(filepath.Ext(s))
	rel := strings.LastIndexByte(s[:dot], '-')
	ver := strings.LastIndexByte(s[:rel], '-')
	epoch, version, hasEpoch := strings.Cut(s[ver+1:rel], ":")
	if !hasEpoch {
		epoch, version = "", epoch
	}
	evr, err := rpmver.New(epoch, version, s[rel+1:dot])
	if err != nil {
		t.Fatalf("nevra %q: %v", s, err)
	}
	return NEVRA{Name: s[:ver], EVR: evr, Arch: s[dot+1:]}
}

// snapshot is a repository built by createrepo_c at one moment.
type snapshot struct {
	repomd, primary []byte
	files           map[string]ReceivedPackage // by NEVRA string
}

// buildSnapshot writes one small RPM per NEVRA with rpmpack and runs the
// real createrepo_c over them; every repomd <timestamp> and the revision
// are the publication time.
func buildSnapshot(t testing.TB, published time.Time, nevras ...string) snapshot {
	t.Helper()
	if _, err := exec.LookPath("createrepo_c"); err != nil {
		t.Skip("createrepo_c is not installed (scripts/install-deps.sh installs it)")
	}
	dir := t.TempDir()
	snap := snapshot{files: map[string]ReceivedPackage{}}
	for _, s := range nevras {
		n := nevra(t, s)
		r, err := rpmpack.NewRPM(rpmpack.RPMMetaData{Name: n.Name, Epoch: n.EVR.Epoch, Version: n.EVR.Version,
			Release: n.EVR.Release, Arch: n.Arch, OS: "linux", Licence: "MIT", Summary: n.Name, BuildTime: day0})
		if err != nil {
			t.Fatal(err)
		}
		r.AddFile(rpmpack.RPMFile{Name: "/usr/share/" + n.Name + "/" + s, Body: []byte(s), Mode: 0o100644})
		var rpm bytes.Buffer
		if err := r.Write(&rpm); err != nil {
			t.Fatal(err)
		}
		file := s + ".rpm"
		if err := os.WriteFile(filepath.Join(dir, file), rpm.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		snap.files[s] = ReceivedPackage{File: file, Package: Package{NEVRA: n, Size: int64(rpm.Len()), SHA256: sha256.Sum256(rpm.Bytes())}}
	}
	cmd := exec.Command("createrepo_c", "--no-database", "--simple-md-filenames", "--general-compress-type=gz",
		fmt.Sprintf("--revision=%d", published.Unix()), "--set-timestamp-to-revision", dir)
	cmd.Env = []string{"HOME=" + t.TempDir(), "LC_ALL=C", "PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("createrepo_c: %v\n%s", err, out)
	}
	var err error
	if snap.repomd, err = os.ReadFile(filepath.Join(dir, "repodata", "repomd.xml")); err != nil {
		t.Fatal(err)
	}
	gz, err := os.Open(filepath.Join(dir, "repodata", "primary.xml.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	if snap.primary, err = io.ReadAll(zr); err != nil {
		t.Fatal(err)
	}
	return snap
}

// received lists the snapshot's files for the given NEVRAs.
func (s snapshot) received(t testing.TB, nevras ...string) []ReceivedPackage {
	t.Helper()
	var out []ReceivedPackage
	for _, n := range nevras {
		p, ok := s.files[n]
		if !ok {
			t.Fatalf("snapshot has no %s", n)
		}
		out = append(out, p)
	}
	return out
}

// publisher is a metadata signing key made in the test.
type publisher struct {
	entity *openpgp.Entity
	pinned *PinnedKey
}

func newPublisher(t testing.TB, config *packet.Config) publisher {
	t.Helper()
	e := newEntity(t, config)
	pinned, err := LoadPinnedKey(writePublicKey(t, e))
	if err != nil {
		t.Fatalf("LoadPinnedKey: %v", err)
	}
	return publisher{entity: e, pinned: pinned}
}

// newEntity makes a key created at the build time (EdDSA by default).
func newEntity(t testing.TB, config *packet.Config) *openpgp.Entity {
	t.Helper()
	if config == nil {
		config = &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}
	}
	config.Time = func() time.Time { return buildTime }
	e, err := openpgp.NewEntity("repo publisher", "", "repo@example.org", config)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// writePublicKey writes the armored public keys of the entities to a file,
// as an administrator would install it for updates.conf.
func writePublicKey(t testing.TB, entities ...*openpgp.Entity) string {
	t.Helper()
	return writeKeyFile(t, openpgp.PublicKeyType, entities, (*openpgp.Entity).Serialize)
}

// writeSecretKey writes the armored secret key of e to a file: a mistake
// an administrator could make with a metadata key.
func writeSecretKey(t testing.TB, e *openpgp.Entity) string {
	t.Helper()
	return writeKeyFile(t, openpgp.PrivateKeyType, []*openpgp.Entity{e},
		func(e *openpgp.Entity, w io.Writer) error { return e.SerializePrivate(w, nil) })
}

func writeKeyFile(t testing.TB, blockType string, entities []*openpgp.Entity, serialize func(*openpgp.Entity, io.Writer) error) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, blockType, nil)
	for _, e := range entities {
		if err == nil {
			err = serialize(e, w)
		}
	}
	if err == nil {
		err = w.Close()
	}
	path := filepath.Join(t.TempDir(), "RPM-GPG-KEY-repo")
	if err == nil {
		err = os.WriteFile(path, buf.Bytes(), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// sign makes repomd.xml.asc at the given time with the given hash.
func (p publisher) sign(t testing.TB, repomd []byte, at time.Time, hash crypto.Hash) []byte {
	t.Helper()
	return armorSignature(t, signPacket(t, p.entity.PrivateKey, repomd, at, hash))
}

// signPacket is a binary signature packet over repomd by key (a primary key or a subkey).
func signPacket(t testing.TB, key *packet.PrivateKey, repomd []byte, at time.Time, hash crypto.Hash) []byte {
	t.Helper()
	sig := &packet.Signature{Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: key.PubKeyAlgo,
		Hash: hash, CreationTime: at, IssuerKeyId: &key.KeyId}
	// No salt notation: go-crypto has none for SHA-1, which a test needs.
	config := &packet.Config{Time: func() time.Time { return at }, NonDeterministicSignaturesViaNotation: new(bool)}
	h, err := sig.PrepareSign(config)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(repomd)
	if err := sig.Sign(h, key, config); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := sig.Serialize(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// armorSignature armors packets as a signature file.
func armorSignature(t testing.TB, packets []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.SignatureType, nil)
	if err == nil {
		_, err = w.Write(packets)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// files is what the UpdateVM sends for the snapshot, signed by p.
func (s snapshot) signedBy(t testing.TB, id string, p publisher, pinned *PinnedKey, at time.Time) RepoFiles {
	return RepoFiles{ID: id, Key: pinned, Repomd: s.repomd, Signature: p.sign(t, s.repomd, at, crypto.SHA256),
		Primary: bytes.NewReader(s.primary)}
}

// loadState loads a state below root with the test build time and clock.
func loadState(t testing.TB, root string, clock time.Time) *FreshnessState {
	t.Helper()
	s, err := Load(root, buildTime, clock)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// kinds lists the kinds and severities of findings, for exact comparisons.
func kinds(findings []Finding) []string {
	var out []string
	for _, f := range findings {
		out = append(out, string(f.Severity)+" "+string(f.Kind)+" "+f.Package)
	}
	return out
}
