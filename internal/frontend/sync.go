package frontend

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/updatecall"
)

// syncStream builds the tar stream of what the UpdateVM needs to resolve
// updates for dom0 (overview.md step 2): dom0's rpm database, its network
// repository definitions, dnf configuration and variables, the public keys
// of its keyring (updates.conf keyring) and where that is, the release
// version, and which repositories' metadata dom0 will verify. What it
// leaves out of the keyring is named on warn.
func syncStream(c dom0.Config, exportRPMDB func(root string, w io.Writer) error, warn io.Writer) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	var db bytes.Buffer
	if err := exportRPMDB(c.InstallRootPath(), &db); err != nil {
		return nil, err
	}
	if err := add(updatecall.SyncRPMDB, db.Bytes()); err != nil {
		return nil, err
	}
	if c.ReleaseVer != "" {
		if err := add(updatecall.SyncReleaseVer, []byte(c.ReleaseVer+"\n")); err != nil {
			return nil, err
		}
	}
	var pinned []string
	for id := range c.MetadataKeys {
		pinned = append(pinned, id)
	}
	sort.Strings(pinned)
	if err := add(updatecall.SyncPinnedRepos, []byte(strings.Join(pinned, "\n")+"\n")); err != nil {
		return nil, err
	}
	if err := add(updatecall.SyncKeyring, []byte(c.KeyringDir+"\n")); err != nil {
		return nil, err
	}
	// Each directory of dom0 by its name in the stream.
	for _, d := range []struct{ name, dir string }{{updatecall.SyncReposDir, dnfconf.NetworkReposDir}, {updatecall.SyncDNFVarsDir, "/etc/dnf/vars"}} {
		name, dir := d.name, d.dir
		entries, err := os.ReadDir(c.Path(dir))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		for _, e := range entries {
			if !dnfconf.ShippedFile(e) ||
				(name == updatecall.SyncReposDir && !strings.HasSuffix(e.Name(), ".repo")) {
				continue
			}
			if err := addFile(add, filepath.Join(c.Path(dir), e.Name()), path.Join(name, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	if err := addFile(add, c.Path(dnfconf.DNFConf), updatecall.SyncDNFConf); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	// The keys are the keyring's, wherever updates.conf puts it, and only
	// those dom0's verifier trusts: a secret key left in the keyring, or a
	// file that is no valid public key, never leaves dom0 (the UpdateVM is
	// untrusted), and the UpdateVM's dnf checks with exactly dom0's keys.
	// Judged when the receive judges them, not by a clock set back.
	keyring, skipped, err := rpm.LoadKeyring(c.Path(c.KeyringDir), keyTime(c))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, w := range skipped {
		warnf(warn, "%v (not sent to %s)", w, c.UpdateVM)
	}
	if keyring != nil {
		warnRevoked(keyring.Revoked, warn)
		// A repository's gpgkey= may name a key by a link's name: a copy
		// of the key it names goes under that name too. The UpdateVM takes
		// no hidden name (it would refuse the whole stream).
		addKey := func(name, file string) error {
			if strings.HasPrefix(filepath.Base(name), ".") {
				warnf(warn, "keyring: %q has a hidden name, which the UpdateVM does not take (not sent to %s)", name, c.UpdateVM)
				return nil
			}
			return addFile(add, file, path.Join(updatecall.SyncKeysDir, filepath.Base(name)))
		}
		for _, file := range keyring.Files() {
			if err := addKey(file, file); err != nil {
				return nil, err
			}
		}
		for _, link := range slices.Sorted(maps.Keys(keyring.Links)) {
			if err := addKey(link, keyring.Links[link]); err != nil {
				return nil, err
			}
		}
	}
	return &buf, tw.Close()
}

func addFile(add func(string, []byte) error, src, name string) error {
	data, err := os.ReadFile(filepath.Clean(src))
	if err != nil {
		return err
	}
	return add(name, data)
}

// warnRevoked says, once for each revoked key in the keyring (which
// LoadKeyring skipped), what its revocation does not reach: dom0's rpm
// database, which keeps trusting a key it once imported (importing the
// revocation does not change that, measured with rpm 4.18), and the cached
// repository, which may hold packages the key signed for dom0's dnf to
// install.
func warnRevoked(revoked []rpm.RevokedKey, warn io.Writer) {
	seen := map[uint64]bool{}
	for _, k := range revoked {
		if !seen[k.KeyID] {
			seen[k.KeyID] = true
			warnf(warn, "%s: the revocation does not reach dom0's rpm database, which still trusts the key if it was imported there, nor the cached repository, which may hold packages it signed: remove the key with rpm -e gpg-pubkey-%08x, and empty the cache with pedos-dom0-update --clean",
				k.File, uint32(k.KeyID))
		}
	}
}
