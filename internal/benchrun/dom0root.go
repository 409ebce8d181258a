package benchrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/dnftool"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testrepo"
)

// UpdateVM is the calling domain the benchmark dom0 accepts deliveries from.
const UpdateVM = "bench-vm"

// unpackerUser is the unprivileged user the unpacker drops to (nobody).
const unpackerUser = "65534"

// keyFile is the publisher key below the benchmark dom0's root: trusted for
// packages and pinned for the repository's metadata, as in the lab.
const keyFile = "/etc/pki/rpm-gpg/RPM-GPG-KEY-pedos-bench"

// NewDom0Root makes a dom0 below root as pedos-receive-updates --root
// expects it: updates.conf naming UpdateVM and pinning the repository's
// key, the keyring, the network repository definition, and an rpm database
// holding the key and no packages. Every directory is traversable by the
// unpacker's user, which must reach its staging directory.
func NewDom0Root(ctx context.Context, root string, signer *testrepo.Signer) (dom0.Config, error) {
	files := map[string]string{
		dom0.ConfigPath: "# written by pedos-bench\n" +
			"updatevm = " + UpdateVM + "\n" +
			"unpacker_user = " + unpackerUser + "\n" +
			"keyring = " + filepath.Dir(keyFile) + "\n" +
			"installroot = /\n" +
			"repo." + RepoID + ".metadata_key = " + keyFile + "\n",
		keyFile: string(signer.PublicKeyArmored()),
		dnfconf.NetworkReposDir + "/" + RepoID + ".repo": "[" + RepoID + "]\nname=PedOS benchmark\n" +
			"baseurl=http://mirror.invalid/\nenabled=1\ngpgcheck=1\n",
		"/root/.rpmmacros": rpmMacros,
	}
	for path, content := range files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return dom0.Config{}, err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return dom0.Config{}, err
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return dom0.Config{}, err
	}
	home := filepath.Join(root, "root")
	if err := runTool(ctx, home, "rpmdb", "--root", root, "--initdb"); err != nil {
		return dom0.Config{}, err
	}
	if err := dnftool.ImportKeys(ctx, root, []string{filepath.Join(root, keyFile)}); err != nil {
		return dom0.Config{}, err
	}
	c, err := dom0.LoadConfig(root)
	if err != nil {
		return c, fmt.Errorf("benchmark dom0: %w", err)
	}
	return c, nil
}
