package updatevm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/updatecall"
)

// DefaultInstallRoot is the UpdateVM's fake installroot for dom0 (seed
// document; overview.md step 3).
const DefaultInstallRoot = "/var/lib/PedOS/dom0-updates"

// Tools runs the package tools (internal/dnftool in production).
type Tools interface {
	// ImportRPMDB replaces root's rpm database with an rpmdb --exportdb file.
	ImportRPMDB(root, exportFile string) error
	// DNF runs dnf with args, returning its exit code.
	DNF(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// UpdateVM holds the UpdateVM's paths and tools.
type UpdateVM struct {
	InstallRoot string
	Tools       Tools
	// Log receives progress lines for the person waiting in dom0.
	Log io.Writer
}

// Request is what dom0 asked for: a dnf action with its arguments.
type Request struct {
	Action     string   // one of updatecall.DownloadActions or updatecall.QueryActions
	Packages   []string // package specs
	DNFOptions []string // -y, --best, --exclude=…, --enablerepo=…, ... (forwarded)
	// SessionID is the session dom0 started for this delivery, sent back
	// as the receive service's argument (overview.md step 4); "" to
	// download without sending.
	SessionID string
}

// RepoSwitches are the --enablerepo=GLOB and --disablerepo=GLOB among the
// forwarded dnf options, in their order (dom0 sends them so:
// frontend.Options.RepoSwitches).
func (r Request) RepoSwitches() []dnfconf.RepoSwitch {
	var switches []dnfconf.RepoSwitch
	for _, opt := range r.DNFOptions {
		name, glob, _ := strings.Cut(opt, "=")
		if name == "--enablerepo" || name == "--disablerepo" {
			switches = append(switches, dnfconf.RepoSwitch{Enable: name == "--enablerepo", Glob: glob})
		}
	}
	return switches
}

// packagesDir is where dnf puts this transaction's downloads; it is emptied
// before each download and after each successful send, so only the current
// transaction is ever sent (reference issues #3408, #10716).
func (u *UpdateVM) packagesDir() string { return filepath.Join(u.InstallRoot, "packages") }

func (u *UpdateVM) cacheDir() string { return filepath.Join(u.InstallRoot, "var", "cache", "dnf") }

// dnfBase is the part of every dnf command line that confines dnf to the
// configuration dom0 shipped (notes/real-tools.md: without reposdir dnf
// would read the host's repositories too).
func (u *UpdateVM) dnfBase() ([]string, error) {
	if err := u.dropCacheOnNewConfig(); err != nil {
		return nil, err
	}
	args := []string{
		"--installroot=" + u.InstallRoot,
		"--config=" + filepath.Join(u.InstallRoot, updatecall.SyncDNFConf),
		"--setopt=reposdir=" + filepath.Join(u.InstallRoot, updatecall.SyncReposDir),
		"--setopt=cachedir=" + u.cacheDir(),
		"--noplugins",
		// Nobody can answer dnf's questions here; this also lets dnf
		// import the repository keys dom0 shipped (it checks signatures
		// too, as a first filter; dom0 trusts none of it).
		"-y",
		// Always ask the mirrors whether the metadata changed (only what
		// changed is downloaded): a stale cache would hide updates until
		// dom0 calls the metadata stale.
		"--refresh",
	}
	rel, err := u.readLines(updatecall.SyncReleaseVer)
	if err != nil {
		return nil, err
	}
	if len(rel) > 0 {
		args = append(args, "--releasever="+rel[0])
	}
	pinned, err := u.readLines(updatecall.SyncPinnedRepos)
	if err != nil {
		return nil, err
	}
	// dom0 verifies these repositories' metadata signatures itself; asking
	// dnf to check them too makes it keep repomd.xml.asc in its cache, which
	// is what we forward.
	for _, id := range pinned {
		args = append(args, "--setopt="+id+".repo_gpgcheck=1")
	}
	return args, nil
}

// ErrUpdatesAvailable is CheckUpdates' answer when dnf lists updates.
var ErrUpdatesAvailable = errors.New("updates are available")

// CheckUpdates runs dnf check-update, whose listing is for a person (on
// the log): nil for none, ErrUpdatesAvailable, or an error. With updates,
// it also writes them to stdout for scripts, one per line as
// NAME TAB EPOCH TAB VERSION TAB RELEASE TAB ARCH TAB REPO, read from that
// listing: dnf's own choice, repository priorities and packages that
// replace an installed one included (repoquery --upgrades knows neither).
func (u *UpdateVM) CheckUpdates(ctx context.Context, req Request, stdout io.Writer) error {
	base, err := u.dnfBase()
	if err != nil {
		return err
	}
	args := append(append(base, req.DNFOptions...), "check-update")
	var listing strings.Builder
	code, err := u.Tools.DNF(ctx, append(args, req.Packages...), nil, io.MultiWriter(u.Log, &listing), u.Log)
	switch {
	case err != nil:
		return err
	case code == 0:
		return nil
	case code != 100:
		return fmt.Errorf("dnf check-update failed (exit %d)", code)
	}
	seen := map[string]bool{} // an update that obsoletes its older self is listed twice
	for _, line := range checkUpdateList(listing.String()) {
		if !seen[line] {
			seen[line] = true
			fmt.Fprintln(stdout, line)
		}
	}
	return ErrUpdatesAvailable
}

// checkUpdateList reads dnf check-update's listing (dnf 4.14): one
// "NAME.ARCH [EPOCH:]VERSION-RELEASE REPO" line per update, the same under
// "Obsoleting Packages" for a package that replaces an installed one (the
// indented lines below it are the installed packages it replaces), and a
// name too long for its column alone on its line, the rest indented on the
// next. Other lines (download progress, notes) have another shape.
func checkUpdateList(listing string) []string {
	var updates []string
	var pending string // a name alone on its line
	for line := range strings.Lines(listing) {
		fields := strings.Fields(line)
		indented := strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")
		switch {
		case !indented && len(fields) == 1 && strings.Contains(fields[0], "."):
			pending = fields[0]
			continue
		case indented && pending != "" && len(fields) == 2:
			fields = append([]string{pending}, fields...)
		case indented:
			fields = nil // a replaced package, or nothing of ours
		}
		pending = ""
		if len(fields) != 3 || strings.HasPrefix(fields[2], "@") {
			continue
		}
		dot, dash := strings.LastIndexByte(fields[0], '.'), strings.LastIndexByte(fields[1], '-')
		if dot <= 0 || dash <= 0 {
			continue
		}
		epoch, version, found := strings.Cut(fields[1][:dash], ":")
		if !found {
			epoch, version = "0", epoch
		}
		updates = append(updates, strings.Join([]string{fields[0][:dot], epoch, version, fields[1][dash+1:], fields[0][dot+1:], fields[2]}, "\t"))
	}
	return updates
}

// Query answers list, search and info in the UpdateVM alone.
func (u *UpdateVM) Query(ctx context.Context, req Request, stdout io.Writer) (int, error) {
	base, err := u.dnfBase()
	if err != nil {
		return 1, err
	}
	// -q: dnf would put its download progress on stdout, among the answer.
	args := append(append(base, "-q"), req.DNFOptions...)
	args = append(append(args, req.Action), req.Packages...)
	answer := &countingWriter{w: stdout}
	code, err := u.Tools.DNF(ctx, args, nil, answer, u.Log)
	// -q hides dnf's "No matches found." too: a search that found nothing
	// (exit 0, as found) would otherwise print nothing at all. list and
	// info fail with a message of their own.
	if err == nil && code == 0 && answer.n == 0 && req.Action == "search" {
		fmt.Fprintf(u.Log, "No matches found for %s.\n", strings.Join(req.Packages, " "))
	}
	return code, err
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Clean empties the download cache (--clean).
func (u *UpdateVM) Clean() error {
	if err := os.RemoveAll(u.cacheDir()); err != nil {
		return err
	}
	return os.RemoveAll(u.packagesDir())
}

// Download resolves the transaction against dom0's database and downloads
// its packages. It returns their paths, sorted.
func (u *UpdateVM) Download(ctx context.Context, req Request) ([]string, error) {
	if err := os.RemoveAll(u.packagesDir()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(u.packagesDir(), 0o755); err != nil {
		return nil, err
	}
	base, err := u.dnfBase()
	if err != nil {
		return nil, err
	}
	args := append(base, "--downloadonly", "--downloaddir="+u.packagesDir())
	args = append(append(append(args, req.DNFOptions...), req.Action), req.Packages...)
	watch := watchDownload(u.Log, u.packagesDir(), u.cacheDir())
	code, err := u.Tools.DNF(ctx, args, nil, watch, watch)
	watch.Stop()
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("dnf %s failed in the UpdateVM (exit %d)", req.Action, code)
	}
	return listRPMs(u.packagesDir())
}

// DownloadAndSend downloads req's transaction and, when req names dom0's
// session, sends its packages and the metadata dnf resolved them against
// to dom0 (overview.md steps 3 and 4).
func (u *UpdateVM) DownloadAndSend(ctx context.Context, req Request, s Sender) error {
	fmt.Fprintf(u.Log, "Resolving and downloading (%s) for dom0\n", req.Action)
	packages, err := u.Download(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(u.Log, "Downloaded %d package(s)\n", len(packages))
	if req.SessionID == "" {
		return nil
	}
	metadataDir, err := os.MkdirTemp("", "pedos-metadata-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(metadataDir)
	metadata, err := u.ExportMetadata(metadataDir, req.RepoSwitches())
	if err != nil {
		return err
	}
	fmt.Fprintf(u.Log, "Sending %d package(s) and %d metadata file(s) to dom0\n", len(packages), len(metadata))
	return u.Send(ctx, s, req.SessionID, append(packages, metadata...))
}

// listRPMs lists the .rpm files of dir, sorted.
func listRPMs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".rpm") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}
