package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"pedos.dev/updates/dist"
	"pedos.dev/updates/internal/updatecall"
	"pedos.dev/updates/internal/updatevm"
)

// Programs each domain gets in ProgramsDir, when the build has them.
var (
	dom0Programs = []string{
		"pedos-dom0-update", "pedos-receive-updates", "qfile-dom0-unpacker", "pedos-rpmcheck",
		"qrexec-daemon", "qrexec-client", "pedos-run", "pedos-policy-eval",
	}
	updateVMPrograms = []string{
		"pedos-download-dom0-updates", "qfile-agent", "qrexec-agent", "qrexec-client-vm",
	}
	appVMPrograms = []string{"qrexec-agent", "qrexec-client-vm"}
)

// hostEtc are the host files every domain needs to run the host's /usr
// programs (users, the dynamic linker's cache, Debian's alternatives,
// Python's site configuration for dnf); copied at each Up.
var hostEtc = []string{
	"passwd", "group", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
	"alternatives", "os-release", "debian_version", "localtime", "timezone",
	"python3", "python3.11", "protocols", "services", "mime.types", "gai.conf", "host.conf",
}

// rpmMacros fixes Debian's rpm defaults (notes/real-tools.md): the database
// in ~/.rpmdb and %__gpg pointing at a gpg2 that does not exist. It goes in
// /etc/rpm (read whatever HOME is, e.g. by qrexec services) and in root's
// ~/.rpmmacros.
const rpmMacros = "%_dbpath /var/lib/rpm\n%__gpg /usr/bin/gpg\n"

// What the lab configures in its domains (dom0Files).
const (
	// PublisherKeyFile is the publisher's public key in dom0, the key
	// dom0's keyring trusts and updates.conf pins for RepoID's metadata.
	PublisherKeyFile = "/etc/pki/rpm-gpg/RPM-GPG-KEY-pedos-lab"
	// RepoID is the mirror's repository as dom0 names it.
	RepoID = "pedos-lab"
	// UpdateVMInstallRoot is the UpdateVM's fake installroot for dom0.
	UpdateVMInstallRoot = updatevm.DefaultInstallRoot
	// ReceiveUpdatesService is dom0's service the UpdateVM calls.
	ReceiveUpdatesService = updatecall.ReceiveService
	releaseVer            = "1"
	unpackerUser          = "65534"
)

// provision writes every domain's files: directories, host files, the
// programs, and each role's configuration. Existing state (rpm databases,
// installed packages, the cached repository) is kept.
func (l *Lab) provision(bin string) error {
	for _, d := range []string{"logs", "keys", "qrexec", "mirror/www"} {
		if err := os.MkdirAll(filepath.Join(l.Dir, d), 0o700); err != nil {
			return err
		}
	}
	if err := os.Chmod(l.mirrorWWW(), 0o755); err != nil {
		return err
	}
	publisher, err := l.signer(DefaultKey)
	if err != nil {
		return err
	}
	for _, dom := range l.domains() {
		d := l.Domain(dom.name)
		if err := provisionCommon(d); err != nil {
			return err
		}
		var files map[string]string
		var programs []string
		switch dom.role {
		case RoleDom0:
			files, programs = l.dom0Files(string(publisher.PublicKeyArmored())), dom0Programs
			if err := linkService(d, ReceiveUpdatesService, ProgramsDir+"/pedos-receive-updates"); err != nil {
				return err
			}
		case RoleUpdateVM:
			// The UpdateVM starts with no repositories and no services:
			// dom0 ships its configuration at each update (overview.md
			// step 2). dom0's daemon makes the socket directory too, but
			// the UpdateVM's bind mount needs it first.
			programs = updateVMPrograms
			for _, dir := range []string{d.Path(UpdateVMInstallRoot), filepath.Join(l.qrexecDir(), dom.name)} {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return err
				}
			}
		case RoleAppVM:
			programs = appVMPrograms
			if err := os.MkdirAll(filepath.Join(l.qrexecDir(), dom.name), 0o700); err != nil {
				return err
			}
		}
		for p, content := range files {
			if err := writeFile(d.Path(p), content); err != nil {
				return fmt.Errorf("domain %s: %w", dom.name, err)
			}
		}
		if err := copyPrograms(bin, d.Path(ProgramsDir), programs); err != nil {
			return fmt.Errorf("domain %s: %w", dom.name, err)
		}
	}
	return nil
}

// provisionCommon makes the directories and files every domain has.
func provisionCommon(d DomainLayout) error {
	dirs := map[string]os.FileMode{
		"/etc/rpm": 0o755, "/etc/pedos": 0o755, "/etc/pedos-rpc": 0o755, "/etc/pki/rpm-gpg": 0o755,
		"/etc/yum.repos.d": 0o755, "/etc/yum.real.repos.d": 0o755, "/etc/dnf": 0o755,
		"/var/lib/rpm": 0o755, "/var/lib/PedOS": 0o755, "/var/log/pedos": 0o750, "/var/cache": 0o755,
		"/var/tmp": 0o1777, "/tmp": 0o1777, "/root": 0o700, ProgramsDir: 0o755,
	}
	for p, mode := range dirs {
		if err := os.MkdirAll(d.Path(p), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d.Path(p), mode); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(d.workDir(), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(d.mountPoint(), 0o755); err != nil {
		return err
	}
	for _, name := range hostEtc {
		src := filepath.Join("/etc", name)
		if _, err := os.Lstat(src); errors.Is(err, os.ErrNotExist) {
			continue
		}
		dst := d.Path(filepath.Join("/etc", name))
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if err := copyTree(src, dst); err != nil {
			return fmt.Errorf("domain %s: copying %s: %w", d.Name, src, err)
		}
	}
	common := map[string]string{
		"/etc/hostname":         d.Name + "\n",
		"/etc/hosts":            "127.0.0.1 localhost\n::1 localhost\n" + mirrorAddr + " mirror\n",
		"/etc/resolv.conf":      "",
		"/etc/rpm/macros.pedos": rpmMacros,
		"/root/.rpmmacros":      rpmMacros,
	}
	for p, content := range common {
		if err := writeFile(d.Path(p), content); err != nil {
			return err
		}
	}
	return nil
}

// dom0Files are dom0's configuration files (issue 5, overview.md).
func (l *Lab) dom0Files(publisherKey string) map[string]string {
	vm := l.UpdateVM()
	return map[string]string{
		"/etc/pedos/updates.conf": "# written by pedos-lab\n" +
			"updatevm = " + vm + "\n" +
			"installroot = /\n" +
			"releasever = " + releaseVer + "\n" +
			"unpacker_user = " + unpackerUser + "\n" +
			"keyring = /etc/pki/rpm-gpg\n" +
			"repo." + RepoID + ".metadata_key = " + PublisherKeyFile + "\n",
		// The shipped policy (qrexec.md "Policy"), naming this lab's UpdateVM.
		"/etc/pedos/policy.d/50-pedos-updates.policy": strings.ReplaceAll(shipped("etc/pedos/policy.d/50-pedos-updates.policy"), "sys-firewall", vm),
		"/etc/pedos/domains.conf":                     "# the lab's domains besides dom0\n" + vm + " type=AppVM tags=updatevm\n" + AppVM + " type=AppVM\n",
		PublisherKeyFile:                              publisherKey,
		// The network repository: shipped to the UpdateVM, never used by
		// dom0 itself, whose dnf.conf points reposdir elsewhere.
		"/etc/yum.repos.d/" + RepoID + ".repo": "[" + RepoID + "]\n" +
			"name=PedOS lab repository\n" +
			"baseurl=http://" + mirrorAddr + "/repo/current/\n" +
			"enabled=1\ngpgcheck=1\nrepo_gpgcheck=0\n" +
			"gpgkey=file://" + PublisherKeyFile + "\n",
		// The only repository dom0's dnf sees: no gpgkey= line, so dnf can
		// never import a key by itself (notes/real-tools.md).
		"/etc/yum.real.repos.d/PedOS-cached.repo": shipped("etc/yum.real.repos.d/PedOS-cached.repo"),
		"/etc/dnf/dnf.conf": "[main]\n" +
			"reposdir=/etc/yum.real.repos.d\n" +
			"gpgcheck=1\ninstallonly_limit=3\nclean_requirements_on_remove=True\nbest=False\n" +
			"skip_if_unavailable=False\ninstall_weak_deps=False\nplugins=False\nprotected_packages=\n",
	}
}

// copyPrograms copies the named programs of bin that exist into dst.
func copyPrograms(bin, dst string, names []string) error {
	for _, name := range names {
		src := filepath.Join(bin, name)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := copyFile(src, filepath.Join(dst, name), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// copyFile replaces dst with a copy of src (a new inode, so a running
// program is not disturbed).
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, mode)
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// copyTree copies a file, a symlink or a directory tree.
func copyTree(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil {
			return err
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := copyTree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		return nil
	case fi.Mode().IsRegular():
		return copyFile(src, dst, fi.Mode().Perm())
	}
	return nil // sockets, devices: nothing a domain needs
}

// shipped is a file of the shipped dom0 configuration (dist/dom0).
func shipped(name string) string {
	b, err := dist.Dom0.ReadFile("dom0/" + name)
	if err != nil {
		panic("lab: the shipped configuration lacks " + name) // a build without dist/dom0
	}
	return string(b)
}

// linkService makes /etc/pedos-rpc/NAME in the domain a symlink to program
// (qrexec.md: the service file is executed).
func linkService(d DomainLayout, name, program string) error {
	link := d.Path("/etc/pedos-rpc/" + name)
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.Symlink(program, link)
}
