package lab

import "path/filepath"

// Layout names the files of a lab directory. Everything a lab makes on the
// host is inside it, except the kernel objects (namespaces, veth pair,
// mounts), which live only as long as the domains' processes.
//
//	DIR/lab.json                      pids and namespaces of the running lab
//	DIR/logs/DOMAIN.log               a domain's init and service output
//	DIR/keys/NAME.asc, NAME.pub.asc   publisher keys (private ones never enter a domain)
//	DIR/mirror/www/repo/...           what the mirror serves (see publish.go)
//	DIR/qrexec/DOMAIN/                qrexec sockets of a non-dom0 domain
//	DIR/domains/DOMAIN/root/          the domain's own files: etc, var, root, tmp, usr
//	DIR/domains/DOMAIN/work/          overlayfs work directory for /usr
//	DIR/domains/DOMAIN/mnt/           the mount point of the domain's root (empty on the host)
//	DIR/domains/DOMAIN/control.sock   the domain init's control socket (exec, services)
type Layout struct{ Dir string }

// Domain returns the layout of one domain.
func (l Layout) Domain(name string) DomainLayout {
	return DomainLayout{Base: filepath.Join(l.Dir, "domains", name), Name: name}
}

func (l Layout) logFile(dom string) string { return filepath.Join(l.Dir, "logs", dom+".log") }
func (l Layout) keysDir() string           { return filepath.Join(l.Dir, "keys") }
func (l Layout) mirrorWWW() string         { return filepath.Join(l.Dir, "mirror", "www") }
func (l Layout) qrexecDir() string         { return filepath.Join(l.Dir, "qrexec") }

// DomainLayout names one domain's directories on the host.
type DomainLayout struct {
	Base string
	Name string
}

// Root is the host directory holding the domain's own files; the domain sees
// Root/etc at /etc, Root/var at /var, and so on.
func (d DomainLayout) Root() string { return filepath.Join(d.Base, "root") }

// Path is the host path of what the domain sees at the absolute path p.
func (d DomainLayout) Path(p string) string { return filepath.Join(d.Root(), p) }

func (d DomainLayout) workDir() string     { return filepath.Join(d.Base, "work") }
func (d DomainLayout) mountPoint() string  { return filepath.Join(d.Base, "mnt") }
func (d DomainLayout) controlPath() string { return filepath.Join(d.Base, "control.sock") }
