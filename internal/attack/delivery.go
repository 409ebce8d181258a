package attack

import (
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/repometa"
)

// file is one file of a delivery.
type file struct {
	name string
	data []byte
}

// labRepo is the lab's repository id (dom0 pins its metadata key).
const labRepo = "pedos-lab"

// repoPath is the host directory of a mirror revision: "current",
// "snapshots/NAME" or "revisions/NNNN".
func (e *Env) repoPath(rev string) string {
	return filepath.Join(e.Lab.Dir, "mirror", "www", "repo", rev)
}

// metadataFrom is the metadata an honest UpdateVM forwards for a mirror
// revision (docs/freshness.md): repomd.xml, its signature, and the primary
// metadata decompressed, under the names dom0 expects.
func (e *Env) metadataFrom(rev string) ([]file, error) {
	repodata := filepath.Join(e.repoPath(rev), "repodata")
	repomd, err := os.ReadFile(filepath.Join(repodata, "repomd.xml"))
	if err != nil {
		return nil, err
	}
	files := []file{{"repomd--" + labRepo + ".xml", repomd}}
	if asc, err := os.ReadFile(filepath.Join(repodata, "repomd.xml.asc")); err == nil {
		files = append(files, file{"repomd--" + labRepo + ".xml.asc", asc})
	}
	md, err := repometa.ParseRepomd(repomd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", repodata, err)
	}
	gz, err := os.Open(filepath.Join(e.repoPath(rev), filepath.FromSlash(md.Primary.Location)))
	if err != nil {
		return nil, err
	}
	defer gz.Close()
	r, err := gzip.NewReader(gz)
	if err != nil {
		return nil, err
	}
	primary, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return append(files, file{"primary--" + labRepo + ".xml", primary}), nil
}

// packagesFrom reads package files of a mirror revision.
func (e *Env) packagesFrom(rev string, names ...string) ([]file, error) {
	var files []file
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(e.repoPath(rev), "packages", n))
		if err != nil {
			return nil, err
		}
		files = append(files, file{n, data})
	}
	return files, nil
}

// currentDelivery is what an honest UpdateVM sends for these packages of the
// mirror's current revision.
func (e *Env) currentDelivery(packages ...string) ([]file, error) {
	return e.deliveryFrom("current", "current", packages...)
}

// deliveryFrom is metadata of one revision with packages of another (the
// same for an honest delivery).
func (e *Env) deliveryFrom(metadataRev, packagesRev string, packages ...string) ([]file, error) {
	meta, err := e.metadataFrom(metadataRev)
	if err != nil {
		return nil, err
	}
	pkgs, err := e.packagesFrom(packagesRev, packages...)
	return append(pkgs, meta...), err
}

// deliver makes the UpdateVM answer the next update with these files, sent
// by the real qfile-agent. It takes what the functions above return, and
// passes their error on.
func (e *Env) deliver(files []file, err error) error {
	if err != nil {
		return err
	}
	m := map[string][]byte{}
	for _, f := range files {
		m[f.name] = f.data
	}
	return e.deliverFiles(m)
}

// unsafeModes lists files in dom0's cached repository with a setuid,
// setgid or sticky bit or writable by group or others (S10).
func (e *Env) unsafeModes() ([]string, error) {
	var bad []string
	root := e.dom0Path(dom0.CachedRepoDir)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky|0o022) != 0 {
			bad = append(bad, fmt.Sprintf("%s %v", strings.TrimPrefix(path, root), info.Mode()))
		}
		return nil
	})
	return bad, err
}
