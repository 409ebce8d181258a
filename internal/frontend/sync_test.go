package frontend

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
// there.
func TestSyncShipsTheKeyring(t *testing.T) {
	tr := newTestRun(t, nil)
	c := tr.config
	c.KeyringDir = "/etc/pedos/keys"
	for name, data := range map[string]string{
		"/etc/pedos/keys/RPM-GPG-KEY-vendor": "trusted key",
		"/etc/pki/rpm-gpg/RPM-GPG-KEY-other": "a key outside the keyring",
		"/etc/yum.repos.d/vendor.repo":       "[vendor]\nbaseurl=http://mirror.invalid/\ngpgkey=file:///etc/pedos/keys/RPM-GPG-KEY-vendor\n",
	} {
		if err := os.MkdirAll(filepath.Dir(c.Path(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.Path(name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := syncStream(c, tr.tools.ExportRPMDB)
	if err != nil {
		t.Fatal(err)
	}
	vm := &updatevm.UpdateVM{InstallRoot: t.TempDir(), Tools: importNothing{}, Log: io.Discard}
	if err := vm.ApplySync(stream); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(vm.InstallRoot, updatevm.SyncKeysDir)
	if got, err := os.ReadFile(filepath.Join(keys, "RPM-GPG-KEY-vendor")); err != nil || string(got) != "trusted key" {
		t.Errorf("the keyring's key in the UpdateVM: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(keys, "RPM-GPG-KEY-other")); !os.IsNotExist(err) {
		t.Errorf("a key outside the configured keyring was shipped (%v)", err)
	}
	repo, err := os.ReadFile(filepath.Join(vm.InstallRoot, "etc/yum.repos.d/vendor.repo"))
	if want := "gpgkey=file://" + keys + "/RPM-GPG-KEY-vendor\n"; err != nil || !strings.Contains(string(repo), want) {
		t.Errorf("the repository's gpgkey= line does not point at the shipped key %q: %v\n%s", want, err, repo)
	}
}
