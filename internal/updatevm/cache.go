package updatevm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"pedos.dev/updates/internal/updatecall"
)

// cacheConfigFile holds the fingerprint of the configuration dnf's cache was
// filled under (beside the cache, so that --clean keeps it).
func (u *UpdateVM) cacheConfigFile() string {
	return filepath.Join(u.InstallRoot, "var", "cache", "dnf-config.sha256")
}

// dropCacheOnNewConfig empties dnf's cache when the repository configuration
// dnf is about to read is not the one the cache was filled under. dnf keeps
// a directory per repository id and URL (ID-HASH) and never removes the old
// one, and --refresh leaves repomd.xml's time alone when it has not changed:
// after a baseurl was changed and changed back, the other URL's directory
// looked the newest to repoCacheDir, and its older metadata went to dom0,
// which refused every later update as a rollback (M3). One configuration
// per cache leaves one directory per repository.
func (u *UpdateVM) dropCacheOnNewConfig() error {
	fingerprint, err := u.configFingerprint()
	if err != nil {
		return err
	}
	saved, err := os.ReadFile(u.cacheConfigFile())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if bytes.Equal(saved, fingerprint) {
		return nil
	}
	if err := os.RemoveAll(u.cacheDir()); err != nil {
		return fmt.Errorf("emptying dnf's cache for a changed repository configuration: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(u.cacheConfigFile()), 0o755); err != nil {
		return err
	}
	return os.WriteFile(u.cacheConfigFile(), fingerprint, 0o644)
}

// configFingerprint is a SHA-256, in hex, of every file of the synced
// configuration that names a repository or its URL: dnf.conf, $releasever,
// dnf's variables and the repository files, each with its path and length.
func (u *UpdateVM) configFingerprint() ([]byte, error) {
	files := []string{updatecall.SyncDNFConf, updatecall.SyncReleaseVer}
	for _, dir := range []string{updatecall.SyncDNFVarsDir, updatecall.SyncReposDir} {
		entries, err := os.ReadDir(filepath.Join(u.InstallRoot, dir))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(files)
	h := sha256.New()
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(u.InstallRoot, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	return fmt.Appendf(nil, "%x\n", h.Sum(nil)), nil
}
