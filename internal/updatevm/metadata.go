package updatevm

import (
	"compress/bzip2"
	"compress/gzip"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/updatecall"
)

// Names of the metadata files in the stream to dom0 (docs/freshness.md):
// they cannot be mistaken for packages, which must end in .rpm.
func repomdName(repo string) string    { return "repomd--" + repo + ".xml" }
func repomdAscName(repo string) string { return "repomd--" + repo + ".xml.asc" }
func primaryName(repo string) string   { return "primary--" + repo + ".xml" }

var cacheSuffix = regexp.MustCompile(`^-[0-9a-f]{16}$`)

// repoCacheDir finds the dnf cache directory of a repository id: dnf names
// it ID-HASH. The cache is emptied whenever the configuration changes
// (dropCacheOnNewConfig), so there is one; should there be several, the
// one dnf wrote last wins.
func (u *UpdateVM) repoCacheDir(repo string) (string, error) {
	entries, err := os.ReadDir(u.cacheDir())
	if err != nil {
		return "", err
	}
	var best string
	var bestTime int64
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), repo)
		if !ok || !e.IsDir() || !cacheSuffix.MatchString(suffix) {
			continue
		}
		info, err := os.Stat(filepath.Join(u.cacheDir(), e.Name(), "repodata", "repomd.xml"))
		if err != nil {
			continue
		}
		if t := info.ModTime().UnixNano(); best == "" || t > bestTime {
			best, bestTime = filepath.Join(u.cacheDir(), e.Name()), t
		}
	}
	if best == "" {
		return "", fmt.Errorf("no cached metadata for repository %s", repo)
	}
	return best, nil
}

// ExportMetadata writes, into dir, the metadata dnf resolved against for
// each repository dom0 pins and this run enables: repomd.xml, its detached
// signature, and the primary metadata decompressed (dom0 checks it against
// the open-checksum in the signed repomd.xml, so it needs no decompressor
// of its own).
//
// dom0 refuses metadata of a repository it does not count as enabled, and
// counts with dnfconf.ReadNetworkRepos on the repository files it shipped
// here (sync) and the same switches, in their order. The same function on
// this copy of those files gives the same set, glob for glob; dnf's own
// list (dnf repolist) would need its output parsed, and could differ
// where dnf's globbing does.
func (u *UpdateVM) ExportMetadata(dir string, switches []dnfconf.RepoSwitch) ([]string, error) {
	pinned, err := u.readLines(updatecall.SyncPinnedRepos)
	if err != nil {
		return nil, err
	}
	// What dnf skips it says itself; dom0's front end names it too.
	repos, _, err := dnfconf.ReadNetworkRepos(u.InstallRoot, switches)
	if err != nil {
		return nil, fmt.Errorf("dom0's repository definitions: %w", err)
	}
	var files []string
	for _, repo := range pinned {
		if !slices.Contains(repos.Enabled, repo) {
			continue
		}
		cache, err := u.repoCacheDir(repo)
		if err != nil {
			fmt.Fprintf(u.Log, "warning: %v\n", err)
			continue
		}
		repodata := filepath.Join(cache, "repodata")
		repomd := filepath.Join(repodata, "repomd.xml")
		primaryHref, err := primaryLocation(repomd)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", repo, err)
		}
		out := filepath.Join(dir, repomdName(repo))
		if err := copyFile(repomd, out); err != nil {
			return nil, err
		}
		files = append(files, out)
		if _, err := os.Stat(repomd + ".asc"); err == nil {
			out := filepath.Join(dir, repomdAscName(repo))
			if err := copyFile(repomd+".asc", out); err != nil {
				return nil, err
			}
			files = append(files, out)
		}
		out = filepath.Join(dir, primaryName(repo))
		if err := decompress(filepath.Join(cache, filepath.FromSlash(primaryHref)), out); err != nil {
			return nil, fmt.Errorf("repository %s: primary metadata: %w", repo, err)
		}
		files = append(files, out)
	}
	return files, nil
}

// primaryLocation reads the primary metadata's location from repomd.xml.
func primaryLocation(repomd string) (string, error) {
	f, err := os.Open(repomd)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var doc struct {
		Data []struct {
			Type     string `xml:"type,attr"`
			Location struct {
				Href string `xml:"href,attr"`
			} `xml:"location"`
		} `xml:"data"`
	}
	if err := xml.NewDecoder(f).Decode(&doc); err != nil {
		return "", fmt.Errorf("%s: %w", repomd, err)
	}
	for _, d := range doc.Data {
		// The mirror wrote this file: its href must stay in the cached
		// repository's repodata.
		href := d.Location.Href
		if d.Type == "primary" && strings.HasPrefix(href, "repodata/") && !strings.Contains(href, "..") {
			return href, nil
		}
	}
	return "", fmt.Errorf("%s lists no primary metadata under repodata/", repomd)
}

// decompress writes src, compressed as its extension says, to dst.
func decompress(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	var r io.Reader
	switch filepath.Ext(src) {
	case ".gz":
		r, err = gzip.NewReader(in)
	case ".xz":
		r, err = xz.NewReader(in)
	case ".zst":
		var zr *zstd.Decoder
		if zr, err = zstd.NewReader(in); err == nil {
			defer zr.Close()
		}
		r = zr
	case ".bz2": // createrepo_c --general-compress-type bz2
		r = bzip2.NewReader(in)
	case ".xml":
		r = in
	default:
		return fmt.Errorf("%s: unsupported compression", src)
	}
	if err == nil {
		err = writeFrom(dst, r)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}

// copyFile copies src to dst, a new file.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFrom(dst, in)
}

// writeFrom writes what r reads to dst, a new file.
func writeFrom(dst string, r io.Reader) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
