package frontend

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testrepo"
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
	for name, data := range map[string]string{
		"/etc/pedos/keys/RPM-GPG-KEY-vendor": public,
		"/etc/pedos/keys/SECRET-KEY.asc":     string(signer.PrivateKeyArmored()),
		"/etc/pedos/keys/README":             "not a key",
		"/etc/pki/rpm-gpg/RPM-GPG-KEY-other": public,
		"/etc/yum.repos.d/vendor.repo":       "[vendor]\nbaseurl=http://mirror.invalid/\ngpgkey=file:///etc/pedos/keys/RPM-GPG-KEY-vendor\n",
	} {
		if err := os.MkdirAll(filepath.Dir(c.Path(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.Path(name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var warnings strings.Builder
	stream, err := syncStream(c, tr.tools.ExportRPMDB, &warnings)
	if err != nil {
		t.Fatal(err)
	}
	vm := &updatevm.UpdateVM{InstallRoot: t.TempDir(), Tools: importNothing{}, Log: io.Discard}
	if err := vm.ApplySync(stream); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(vm.InstallRoot, updatevm.SyncKeysDir)
	if got, err := os.ReadFile(filepath.Join(keys, "RPM-GPG-KEY-vendor")); err != nil || string(got) != public {
		t.Errorf("the keyring's key in the UpdateVM: %.60q, %v", got, err)
	}
	for _, name := range []string{"RPM-GPG-KEY-other", "SECRET-KEY.asc", "README"} {
		if _, err := os.Stat(filepath.Join(keys, name)); !os.IsNotExist(err) {
			t.Errorf("%s was shipped to the UpdateVM (%v)", name, err)
		}
	}
	for _, want := range []string{"SECRET-KEY.asc: file holds a secret key", "README: not a valid armored public key"} {
		if !strings.Contains(warnings.String(), want) {
			t.Errorf("warnings %q do not say %q", warnings.String(), want)
		}
	}
	repo, err := os.ReadFile(filepath.Join(vm.InstallRoot, "etc/yum.repos.d/vendor.repo"))
	if want := "gpgkey=file://" + keys + "/RPM-GPG-KEY-vendor\n"; err != nil || !strings.Contains(string(repo), want) {
		t.Errorf("the repository's gpgkey= line does not point at the shipped key %q: %v\n%s", want, err, repo)
	}
}
