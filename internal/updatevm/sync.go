// Package updatevm is the UpdateVM's side of a dom0 update: it takes dom0's
// package database and repository configuration, resolves and downloads the
// transaction with dnf in a fake installroot, and hands exactly that
// transaction's packages, with the repository metadata dnf resolved against,
// to qfile-agent. Nothing here is trusted by dom0: it re-checks everything.
package updatevm

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/updatecall"
)

// Bounds on the tar stream dom0 ships (updatecall's Sync* members).
const (
	maxSyncFileBytes = 256 << 20 // the rpm database export is the largest
	maxSyncFiles     = 4096
)

// syncAllowed says whether a tar entry name is one dom0 ships. Anything else
// in the stream is refused rather than written somewhere unexpected.
func syncAllowed(name string) bool {
	if name != path.Clean(name) || path.IsAbs(name) || strings.HasPrefix(name, "..") {
		return false
	}
	switch name {
	case updatecall.SyncRPMDB, updatecall.SyncReleaseVer, updatecall.SyncPinnedRepos, updatecall.SyncKeyring, updatecall.SyncDNFConf:
		return true
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	return base != "" && !strings.HasPrefix(base, ".") &&
		(dir == updatecall.SyncReposDir || dir == updatecall.SyncDNFVarsDir || dir == updatecall.SyncKeysDir)
}

// ApplySync replaces the installroot's copy of dom0's configuration with the
// tar stream r and imports dom0's rpm database into it.
func (u *UpdateVM) ApplySync(r io.Reader) error {
	staging, err := os.MkdirTemp(u.InstallRoot, ".sync-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	if err := extractSync(r, staging); err != nil {
		return fmt.Errorf("dom0's configuration stream: %w", err)
	}
	// Replace the configuration trees whole, so a repository dom0 removed
	// does not linger here.
	for _, d := range []string{updatecall.SyncReposDir, path.Dir(updatecall.SyncDNFConf), updatecall.SyncKeysDir, path.Dir(updatecall.SyncReleaseVer)} {
		dst := filepath.Join(u.InstallRoot, d)
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		src := filepath.Join(staging, d)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(src, dst); err != nil {
			return err
		}
	}
	if err := u.rootGPGKeys(); err != nil {
		return err
	}
	return u.Tools.ImportRPMDB(u.InstallRoot, filepath.Join(staging, updatecall.SyncRPMDB))
}

// extractSync writes the tar stream's files below dir: only the names
// syncAllowed lets through, regular files within the limits, and at least
// the rpm database.
func extractSync(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch {
		case n >= maxSyncFiles:
			return fmt.Errorf("more than %d entries", maxSyncFiles)
		case hdr.Typeflag == tar.TypeDir:
			continue
		case hdr.Typeflag != tar.TypeReg || !syncAllowed(hdr.Name):
			return fmt.Errorf("unexpected entry %q", hdr.Name)
		case hdr.Size > maxSyncFileBytes:
			return fmt.Errorf("%s is larger than %d bytes", hdr.Name, maxSyncFileBytes)
		}
		dst := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := writeFrom(dst, tr); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, updatecall.SyncRPMDB)); err != nil {
		return fmt.Errorf("no %s", updatecall.SyncRPMDB)
	}
	return nil
}

// rootGPGKeys points the gpgkey= lines of dom0's repository definitions at
// the copies of dom0's keys inside the installroot: dnf reads file:// key
// URLs from the host's file system, where this VM's own keys (if any) live.
// dom0 ships its keyring's keys as updatecall.SyncKeysDir wherever its keyring is, so
// a URL into the keyring is first made one into updatecall.SyncKeysDir.
func (u *UpdateVM) rootGPGKeys() error {
	files, err := dnfconf.RepoFiles(filepath.Join(u.InstallRoot, updatecall.SyncReposDir))
	if err != nil {
		return err
	}
	keyring, err := u.readLines(updatecall.SyncKeyring)
	if err != nil {
		return err
	}
	var fromKeyring string
	if len(keyring) == 1 && path.IsAbs(keyring[0]) {
		fromKeyring = "file://" + strings.TrimSuffix(path.Clean(keyring[0]), "/") + "/"
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		lines := strings.Split(string(data), "\n")
		inGPGKey := false
		for i, line := range lines {
			// A gpgkey may list its URLs over several lines: an indented
			// line continues the option before it, as dnf reads the file.
			switch kind, trimmed := dnfconf.ReadLine(line); kind {
			case dnfconf.OptionLine:
				key, _, _ := strings.Cut(trimmed, "=")
				inGPGKey = strings.TrimRight(key, " \t") == "gpgkey"
			case dnfconf.SectionLine, dnfconf.EndLine:
				inGPGKey = false
			}
			if !inGPGKey {
				continue
			}
			if fromKeyring != "" {
				line = strings.ReplaceAll(line, fromKeyring, "file:///"+updatecall.SyncKeysDir+"/")
			}
			lines[i] = strings.ReplaceAll(line, "file:///", "file://"+filepath.ToSlash(u.InstallRoot)+"/")
		}
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// readLines returns the non-empty, non-comment lines of a file below the
// installroot; a missing file is no lines.
func (u *UpdateVM) readLines(name string) ([]string, error) {
	f, err := os.Open(filepath.Join(u.InstallRoot, filepath.FromSlash(name)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}
