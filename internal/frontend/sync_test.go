package frontend

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/testrepo"
	"pedos.dev/updates/internal/updatecall"
	"pedos.dev/updates/internal/updatevm"
)

// importNothing stands in for the UpdateVM's rpmdb --importdb: the
// database is not what TestSyncShipsTheKeyring is about.
type importNothing struct{}

func (importNothing) ImportRPMDB(string, string) error { return nil }

func (importNothing) DNF(context.Context, []string, io.Reader, io.Writer, io.Writer) (int, error) {
	return 0, nil
}

// The UpdateVM gets the keys of the keyring updates.conf names, not those
// of /etc/pki/rpm-gpg, and a gpgkey= URL into that keyring finds them
// there. Only the public keys dom0's verifier trusts leave dom0: a secret
// key left in the keyring, or a file that is no key, is named and kept.
func TestSyncShipsTheKeyring(t *testing.T) {
	tr := newTestRun(t, nil)
	c := tr.config
	c.KeyringDir = "/etc/pedos/keys"
	signer, err := testrepo.NewSigner(testrepo.KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	public := string(signer.PublicKeyArmored())
	writeFiles(t, c, map[string]string{
		"/etc/pedos/keys/RPM-GPG-KEY-vendor": public,
		"/etc/pedos/keys/SECRET-KEY.asc":     string(signer.PrivateKeyArmored()),
		"/etc/pedos/keys/README":             "not a key",
		"/etc/pki/rpm-gpg/RPM-GPG-KEY-other": public,
		"/etc/yum.repos.d/vendor.repo":       "[vendor]\nbaseurl=http://mirror.invalid/\ngpgkey=file:///etc/pedos/keys/RPM-GPG-KEY-vendor\n",
	})
	// Fedora's repositories name their key by a per-arch link to it. A
	// hidden name, a link's or a key's, is not sent: the UpdateVM would
	// refuse the whole stream for it.
	for link, target := range map[string]string{"RPM-GPG-KEY-vendor-x86_64": "RPM-GPG-KEY-vendor", ".RPM-GPG-KEY-vendor-old": "RPM-GPG-KEY-vendor"} {
		if err := os.Symlink(target, c.Path("/etc/pedos/keys/"+link)); err != nil {
			t.Fatal(err)
		}
	}
	writeFiles(t, c, map[string]string{"/etc/pedos/keys/.RPM-GPG-KEY-hidden": public})
	var warnings strings.Builder
	vm := syncInto(t, tr, c, &warnings)
	keys := filepath.Join(vm.InstallRoot, updatecall.SyncKeysDir)
	for _, name := range []string{"RPM-GPG-KEY-vendor", "RPM-GPG-KEY-vendor-x86_64"} {
		if got, err := os.ReadFile(filepath.Join(keys, name)); err != nil || string(got) != public {
			t.Errorf("the keyring's key in the UpdateVM as %s: %.60q, %v", name, got, err)
		}
	}
	if strings.Contains(warnings.String(), "x86_64") {
		t.Errorf("the link to a key of the keyring is warned about: %s", warnings.String())
	}
	for _, hidden := range []string{".RPM-GPG-KEY-vendor-old", ".RPM-GPG-KEY-hidden"} {
		if !strings.Contains(warnings.String(), hidden+`" has a hidden name, which the UpdateVM does not take (not sent to`) {
			t.Errorf("no warning names %s: %s", hidden, warnings.String())
		}
	}
	for _, name := range []string{"RPM-GPG-KEY-other", "SECRET-KEY.asc", "README"} {
		if _, err := os.Stat(filepath.Join(keys, name)); !os.IsNotExist(err) {
			t.Errorf("%s was shipped to the UpdateVM (%v)", name, err)
		}
	}
	revoked, err := testrepo.NewSigner(testrepo.KeySpec{Revoked: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path("/etc/pedos/keys/RPM-GPG-KEY-revoked"), revoked.PublicKeyArmored(), 0o644); err != nil {
		t.Fatal(err)
	}
	warnings.Reset()
	if _, err := syncStream(c, tr.tools.ExportRPMDB, &warnings); err != nil {
		t.Fatal(err)
	}
	// A revoked key: not shipped, and what else to do is said, with the
	// rpm database's name for the key.
	shortID := strings.ToLower(revoked.Fingerprint()[len(revoked.Fingerprint())-8:])
	// A file's name may be quoted (rpm.LoadKeyring's warnings).
	for _, want := range [][2]string{{"SECRET-KEY.asc", "key " + signer.Fingerprint() + ": file holds a secret key"}, {"README", "not a valid armored public key"},
		{"RPM-GPG-KEY-revoked", "key " + revoked.Fingerprint() + ": key is revoked (not sent to"}, {"RPM-GPG-KEY-revoked", "the revocation does not reach dom0's rpm database"},
		{"", "rpm -e gpg-pubkey-" + shortID + ", and empty the cache with pedos-dom0-update --clean"}} {
		if !regexp.MustCompile(regexp.QuoteMeta(want[0]) + `"?:? ?` + regexp.QuoteMeta(want[1])).MatchString(warnings.String()) {
			t.Errorf("warnings %q do not say %q", warnings.String(), want)
		}
	}
	repo, err := os.ReadFile(filepath.Join(vm.InstallRoot, "etc/yum.repos.d/vendor.repo"))
	if want := "gpgkey=file://" + keys + "/RPM-GPG-KEY-vendor\n"; err != nil || !strings.Contains(string(repo), want) {
		t.Errorf("the repository's gpgkey= line does not point at the shipped key %q: %v\n%s", want, err, repo)
	}
}

// Keys are judged at the time floor saved in the freshness state, as the
// receive judges them, not at a clock set back behind it: a key valid by
// the clock but expired at the floor stays in dom0, and is named.
func TestSyncJudgesKeysAtTheTimeFloor(t *testing.T) {
	tr := newTestRun(t, nil)
	c := tr.config
	signer, err := testrepo.NewSigner(testrepo.KeySpec{Created: time.Now().Add(-time.Hour), Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	floor := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	writeFiles(t, c, map[string]string{
		"/etc/pki/rpm-gpg/RPM-GPG-KEY-vendor": string(signer.PublicKeyArmored()),
		repometa.StatePath:                    `{"time_floor": "` + floor + `", "repos": {}}`,
	})
	var warnings strings.Builder
	vm := syncInto(t, tr, c, &warnings)
	if _, err := os.Stat(filepath.Join(vm.InstallRoot, updatecall.SyncKeysDir, "RPM-GPG-KEY-vendor")); !os.IsNotExist(err) {
		t.Errorf("a key expired at the time floor %s was shipped to the UpdateVM (%v)", floor, err)
	}
	if want := "no valid signing key at " + floor; !strings.Contains(warnings.String(), want) {
		t.Errorf("warnings %q do not say %q", warnings.String(), want)
	}
}

// writeFiles writes each file (a path as on a real host) below c's root.
func writeFiles(t *testing.T, c dom0.Config, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(c.Path(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.Path(name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// syncInto builds dom0's sync stream from c and applies it to a fresh
// UpdateVM, whose fake installroot it returns; warnings get the front end's.
func syncInto(t *testing.T, tr *testRun, c dom0.Config, warnings io.Writer) *updatevm.UpdateVM {
	t.Helper()
	stream, err := syncStream(c, tr.tools.ExportRPMDB, warnings)
	if err != nil {
		t.Fatal(err)
	}
	vm := &updatevm.UpdateVM{InstallRoot: t.TempDir(), Tools: importNothing{}, Log: io.Discard}
	if err := vm.ApplySync(stream); err != nil {
		t.Fatal(err)
	}
	return vm
}
