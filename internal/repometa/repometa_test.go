package repometa

import (
	"bytes"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name string
		kind FileKind
		repo string
	}{
		{"bash-5.2.37-1.fc41.x86_64.rpm", FilePackage, ""},
		{"repomd--updates.xml", FileRepomd, "updates"},
		{"repomd--updates.xml.asc", FileRepomdSignature, "updates"},
		{"primary--updates.xml", FilePrimary, "updates"},
		{"repomd--a.xml.xml", FileRepomd, "a.xml"},
		{"primary--pedos-dom0-current:x_1.xml", FilePrimary, "pedos-dom0-current:x_1"},
		{"primary--updates.xml.asc", 0, ""},
		{"repomd--.xml", 0, ""},
		{"repomd--_x.xml", 0, ""},
		{"repomd-updates.xml", 0, ""},
		{"repomd--updates.xml.gz", 0, ""},
		{"filelists--updates.xml", 0, ""},
		{"repomd--up/dates.xml", 0, ""},
		{".rpm", 0, ""},
		{"repomd--" + strings.Repeat("a", 101) + ".xml", 0, ""},
	} {
		kind, repo, err := Classify(c.name)
		if kind != c.kind || repo != c.repo || (err == nil) != (c.kind != 0) {
			t.Errorf("Classify(%q) = %v, %q, %v; want %v, %q", c.name, kind, repo, err, c.kind, c.repo)
		}
		if err != nil && strings.Contains(err.Error(), c.name) {
			t.Errorf("Classify(%q): the error repeats the untrusted name: %v", c.name, err)
		}
	}
	if FileRepomd.MaxSize() != 1<<20 || FileRepomdSignature.MaxSize() != 64<<10 || FilePrimary.MaxSize() != 1<<30 {
		t.Error("size limits differ from docs/freshness.md")
	}
}

func TestLoadPinnedKeyPolicy(t *testing.T) {
	weak := newEntity(t, &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 1024})
	if _, err := LoadPinnedKey(writePublicKey(t, weak)); err == nil || !strings.Contains(err.Error(), "at least 2048") {
		t.Errorf("RSA-1024 key: err = %v, want a policy error", err)
	}
	if _, err := LoadPinnedKey(writeSecretKey(t, newEntity(t, nil))); err == nil || !strings.Contains(err.Error(), "secret key") {
		t.Errorf("a secret key: err = %v, want a refusal", err)
	}
	// The package key policy (rpm.KeyStrength): ed25519, not Ed448.
	ed448 := newEntity(t, &packet.Config{Algorithm: packet.PubKeyAlgoEd448})
	if _, err := LoadPinnedKey(writePublicKey(t, ed448)); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("Ed448 key: err = %v, want a policy error", err)
	}
	revoked := newEntity(t, nil)
	if err := revoked.RevokeKey(packet.KeyRetired, "replaced", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPinnedKey(writePublicKey(t, revoked)); err == nil || !strings.Contains(err.Error(), "the key is revoked") {
		t.Errorf("a revoked key: err = %v, want a refusal", err)
	}
	a, b := newEntity(t, nil), newEntity(t, nil)
	if _, err := LoadPinnedKey(writePublicKey(t, a, b)); err == nil || !strings.Contains(err.Error(), "holds 2 keys") {
		t.Errorf("two keys: err = %v", err)
	}
	// Two armored blocks are two keys too (go-crypto's reader would have
	// read the first alone, and pinned it).
	twoBlocks := filepath.Join(t.TempDir(), "two-blocks.asc")
	first, err := os.ReadFile(writePublicKey(t, a))
	if err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(writePublicKey(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(twoBlocks, append(first, second...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPinnedKey(twoBlocks); err == nil || !strings.Contains(err.Error(), "holds 2 keys") {
		t.Errorf("two armored blocks: err = %v", err)
	}
	rsa := newEntity(t, &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048})
	if _, err := LoadPinnedKey(writePublicKey(t, rsa)); err != nil {
		t.Errorf("RSA-2048 key: %v", err)
	}
}

// TestVerifyRepomd covers steps 1 and 2 against real createrepo_c output.
// A missing-metadata finding names what is missing, no more: a stripped
// signature and a withheld primary point at different causes.
func TestMissingMetadataNamesWhatIsMissing(t *testing.T) {
	snap := buildSnapshot(t, day0, "foo-1.0-1.noarch")
	pub := newPublisher(t, nil)
	for missing, files := range map[string]func(f *RepoFiles){
		"repomd.xml.asc":                      func(f *RepoFiles) { f.Signature = nil },
		"primary":                             func(f *RepoFiles) { f.Primary = nil },
		"primary, repomd.xml, repomd.xml.asc": func(f *RepoFiles) { *f = RepoFiles{ID: f.ID, Key: f.Key} },
	} {
		f := snap.signedBy(t, "updates", pub, pub.pinned, day0)
		files(&f)
		_, findings := loadState(t, t.TempDir(), day0).VerifyRepomd(f, nil)
		want := "repo updates has a pinned metadata key but the UpdateVM did not send its " + missing + ": "
		if len(findings) != 1 || findings[0].Kind != MissingMetadata || !strings.HasPrefix(findings[0].Detail, want) {
			t.Errorf("without %s: %v, want one missing-metadata finding beginning %q", missing, findings, want)
		}
	}
}

func TestVerifyRepomd(t *testing.T) {
	snap := buildSnapshot(t, day0, "foo-1.0-1.noarch", "bar-1:2.0-1.x86_64")
	pub, other := newPublisher(t, nil), newPublisher(t, nil)
	expiring := newEntity(t, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, KeyLifetimeSecs: 24 * 3600})
	expiringKey, err := LoadPinnedKey(writePublicKey(t, expiring))
	if err != nil {
		t.Fatal(err)
	}
	good := func() RepoFiles { return snap.signedBy(t, "updates", pub, pub.pinned, day0) }
	// A pinned ed25519 key with a 1024-bit RSA signing subkey: the pin checks the primary only.
	weakSubkey := newEntity(t, nil)
	if err := weakSubkey.AddSigningSubkey(&packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 1024, Time: func() time.Time { return buildTime }}); err != nil {
		t.Fatal(err)
	}
	weakSubkeyPinned, err := LoadPinnedKey(writePublicKey(t, weakSubkey))
	if err != nil {
		t.Fatal(err)
	}
	// The primary's open-size in repomd.xml, one more than the primary sent, then signed.
	i := bytes.Index(snap.repomd, []byte(`<data type="primary">`))
	sizeAt := i + bytes.Index(snap.repomd[i:], []byte("<open-size>")) + len("<open-size>")
	sizeEnd := sizeAt + bytes.IndexByte(snap.repomd[sizeAt:], '<')
	wrongSize := slices.Concat(snap.repomd[:sizeAt], []byte(fmt.Sprint(len(snap.primary)+1)), snap.repomd[sizeEnd:])
	for _, c := range []struct {
		name  string
		clock time.Time
		files func() RepoFiles
		want  []string
	}{
		{"signed by the pinned key", day0, good, nil},
		{"publisher's clock ahead of dom0's", day0.Add(-48 * time.Hour), good, nil},
		{"no key pinned", day0, func() RepoFiles { f := good(); f.Key = nil; return f }, []string{"warning not-verifiable "}},
		{"signature stripped", day0, func() RepoFiles { f := good(); f.Signature = nil; return f }, []string{"rejected missing-metadata "}},
		{"primary withheld", day0, func() RepoFiles { f := good(); f.Primary = nil; return f }, []string{"rejected missing-metadata "}},
		{"M7: signed by a key not pinned for the repo", day0, func() RepoFiles {
			return snap.signedBy(t, "updates", other, pub.pinned, day0)
		}, []string{"rejected wrong-key "}},
		{"repomd.xml changed after signing", day0, func() RepoFiles {
			f := good()
			f.Repomd = bytes.Replace(bytes.Clone(f.Repomd), []byte("<revision>"), []byte("<revision>1"), 1)
			return f
		}, []string{"rejected bad-signature "}},
		{"SHA-1 signature", day0, func() RepoFiles {
			f := good()
			f.Signature = pub.sign(t, snap.repomd, day0, crypto.SHA1)
			return f
		}, []string{"rejected bad-signature "}},
		{"two signature packets", day0, func() RepoFiles {
			f := good()
			one := signPacket(t, pub.entity.PrivateKey, snap.repomd, day0, crypto.SHA256)
			f.Signature = armorSignature(t, slices.Concat(one, one))
			return f
		}, []string{"rejected bad-signature "}},
		{"signed by a weak subkey of the pinned key", day0, func() RepoFiles {
			sig := armorSignature(t, signPacket(t, weakSubkey.Subkeys[len(weakSubkey.Subkeys)-1].PrivateKey, snap.repomd, day0, crypto.SHA256))
			return RepoFiles{ID: "updates", Key: weakSubkeyPinned, Repomd: snap.repomd, Signature: sig, Primary: bytes.NewReader(snap.primary)}
		}, []string{"rejected bad-signature "}},
		{"repomd.xml over its size limit", day0, func() RepoFiles {
			f := good()
			f.Repomd = append(bytes.Clone(f.Repomd), bytes.Repeat([]byte(" "), int(FileRepomd.MaxSize())+1-len(f.Repomd))...)
			return f
		}, []string{"rejected bad-metadata "}},
		{"repomd.xml.asc over its size limit", day0, func() RepoFiles {
			f := good()
			f.Signature = append(f.Signature, bytes.Repeat([]byte("\n"), int(FileRepomdSignature.MaxSize())+1-len(f.Signature))...)
			return f
		}, []string{"rejected bad-metadata "}},
		{"primary of another size than listed, with the listed SHA-256", day0, func() RepoFiles {
			f := good()
			f.Repomd, f.Signature = wrongSize, pub.sign(t, wrongSize, day0, crypto.SHA256)
			return f
		}, []string{"rejected bad-metadata "}},
		{"signature dated before its key was made", day0, func() RepoFiles {
			f := good()
			f.Signature = pub.sign(t, snap.repomd, pub.entity.PrimaryKey.CreationTime.Add(-48*time.Hour), crypto.SHA256)
			return f
		}, []string{"rejected bad-signature "}},
		{"not an armored signature", day0, func() RepoFiles { f := good(); f.Signature = []byte("hello"); return f }, []string{"rejected bad-signature "}},
		{"key expired before the time floor", day0, func() RepoFiles {
			sig := publisher{entity: expiring}.sign(t, snap.repomd, buildTime.Add(time.Hour), crypto.SHA256)
			return RepoFiles{ID: "updates", Key: expiringKey, Repomd: snap.repomd, Signature: sig, Primary: bytes.NewReader(snap.primary)}
		}, []string{"rejected bad-signature "}},
		{"primary changed", day0, func() RepoFiles {
			f := good()
			f.Primary = bytes.NewReader(bytes.Replace(snap.primary, []byte("foo"), []byte("fop"), 1))
			return f
		}, []string{"rejected bad-metadata "}},
		{"primary truncated", day0, func() RepoFiles {
			f := good()
			f.Primary = bytes.NewReader(snap.primary[:len(snap.primary)-1])
			return f
		}, []string{"rejected bad-metadata "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := loadState(t, t.TempDir(), c.clock)
			repo, findings := s.VerifyRepomd(c.files(), nil)
			t.Log(findings)
			if got := kinds(findings); !slices.Equal(got, c.want) {
				t.Fatalf("findings %q, want %q (%v)", got, c.want, findings)
			}
			if (repo != nil) != (c.want == nil) {
				t.Fatalf("verified repo %v with findings %v", repo, findings)
			}
			if repo != nil && (repo.Revision != uint64(day0.Unix()) || !repo.Timestamp.Equal(day0) ||
				len(repo.Packages) != 2 || repo.KeyFingerprint != pub.pinned.Fingerprint) {
				t.Errorf("verified repo %+v", repo)
			}
		})
	}
}

// verified is a VerifiedRepo for the table tests of steps 3 to 7.
func verified(t *testing.T, id string, published time.Time, revision uint64, pkgs ...string) *VerifiedRepo {
	r := &VerifiedRepo{ID: id, KeyFingerprint: "AB12", Repomd: Repomd{Revision: revision, Timestamp: published}}
	for i, p := range pkgs {
		r.Packages = append(r.Packages, Package{NEVRA: nevra(t, p), Size: 100, SHA256: [32]byte{byte(i), 1}})
	}
	return r
}

func TestCheckRollback(t *testing.T) {
	s := &FreshnessState{saved: stateFile{Repos: map[string]repoState{
		"updates": {Revision: 200, Timestamp: day0, KeyFingerprint: "AB12"}}}}
	for _, c := range []struct {
		name string
		repo *VerifiedRepo
		want []string
	}{
		{"M3: older revision", verified(t, "updates", day0, 199), []string{"rejected rollback "}},
		{"M3: older timestamp", verified(t, "updates", day0.Add(-time.Second), 200), []string{"rejected rollback "}},
		{"equal revision", verified(t, "updates", day0, 200), nil},
		{"newer revision", verified(t, "updates", day0.Add(time.Hour), 201), nil},
		{"first time seen", verified(t, "other", day0.Add(-1000*time.Hour), 1), []string{"notice first-use "}},
		{"key changed", func() *VerifiedRepo { r := verified(t, "updates", day0, 200); r.KeyFingerprint = "CD34"; return r }(),
			[]string{"notice key-changed "}},
	} {
		if got := kinds(s.CheckRollback(c.repo)); !slices.Equal(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
	}
	// Which of the two went back is named: a newer revision with an older
	// timestamp is no "older revision".
	for repo, want := range map[*VerifiedRepo]string{
		verified(t, "updates", day0.Add(time.Hour), 199):    "is older (its revision: revision 199,",
		verified(t, "updates", day0.Add(-time.Second), 201): "is older (its timestamp: revision 201,",
		verified(t, "updates", day0.Add(-time.Second), 199): "is older (its revision and timestamp: revision 199,",
	} {
		if f := s.CheckRollback(repo); len(f) != 1 || !strings.Contains(f[0].Detail, want) {
			t.Errorf("findings %v, want one saying %q", f, want)
		}
	}
}

func TestCheckAge(t *testing.T) {
	repo := verified(t, "updates", day0, 1)
	for _, c := range []struct {
		name   string
		floor  time.Time // saved in the state
		clock  time.Time
		policy Policy
		want   []string
	}{
		{"fresh", day0, day0.Add(6 * 24 * time.Hour), Policy{}, nil},
		{"exactly max_metadata_age old", day0, day0.Add(DefaultMaxMetadataAge), Policy{}, nil},
		{"a nanosecond over max_metadata_age", day0, day0.Add(DefaultMaxMetadataAge + 1), Policy{}, []string{"warning stale "}},
		{"stale by the clock", day0, day0.Add(8 * 24 * time.Hour), Policy{}, []string{"warning stale "}},
		{"M9: clock set back, stale against the floor", day0.Add(8 * 24 * time.Hour), day0.Add(-400 * 24 * time.Hour), Policy{},
			[]string{"warning stale "}},
		{"M9 with require_fresh", day0.Add(8 * 24 * time.Hour), day0, Policy{RequireFresh: true}, []string{"rejected stale "}},
		{"longer max_metadata_age", day0.Add(8 * 24 * time.Hour), day0, Policy{MaxMetadataAge: 30 * 24 * time.Hour}, nil},
		{"dated minutes after the clock", time.Time{}, day0.Add(-30 * time.Minute), Policy{}, nil},
		{"dated after every trusted time", day0.Add(-2 * time.Hour), day0.Add(-3 * time.Hour), Policy{}, []string{"notice future-dated "}},
	} {
		s := &FreshnessState{saved: stateFile{TimeFloor: c.floor}, clock: c.clock, buildTime: buildTime}
		if got := kinds(s.CheckAge(repo, s.TimeFloor(nil), c.policy)); !slices.Equal(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
	}
	s := &FreshnessState{buildTime: day0.Add(10 * 24 * time.Hour)}
	if got := kinds(s.CheckAge(repo, s.TimeFloor(nil), Policy{})); !slices.Equal(got, []string{"warning stale "}) {
		t.Errorf("metadata older than the program: findings %q", got)
	}
	// M9 with the clock behind: a repository dated ahead of every trusted time is still stale
	// against a floor that a fresher repository of the same batch raised further.
	s = &FreshnessState{saved: stateFile{TimeFloor: day0}, clock: day0, buildTime: buildTime}
	frozen, current := verified(t, "frozen", day0.Add(30*24*time.Hour), 1), verified(t, "current", day0.Add(60*24*time.Hour), 1)
	floor := s.TimeFloor([]*VerifiedRepo{frozen, current})
	if got := kinds(s.CheckAge(frozen, floor, Policy{RequireFresh: true})); !slices.Equal(got, []string{"notice future-dated ", "rejected stale "}) {
		t.Errorf("a future-dated repository 30 days older than the batch's floor: findings %q, want the notice and stale", got)
	}
	if floor := s.TimeFloor([]*VerifiedRepo{verified(t, "x", day0.Add(20*24*time.Hour), 1)}); !floor.Equal(day0.Add(20 * 24 * time.Hour)) {
		t.Errorf("the floor ignores verified metadata timestamps: %v", floor)
	}
}
