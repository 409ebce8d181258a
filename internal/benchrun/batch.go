package benchrun

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"pedos.dev/updates/internal/testrepo"
)

// RepoID is the repository the generated batches come from; the benchmark
// dom0 pins its metadata key (verify.md §2), so the freshness checks run.
const RepoID = "pedos-bench"

// minPackageSize keeps the smallest generated package a real one.
const minPackageSize = 4 << 10

// Sizes returns n payload sizes adding up to about total bytes, spread
// like a distribution's packages: log-normal (σ = 1.2, a few large
// packages among many small ones), at least 4 KiB each, deterministic by
// seed.
func Sizes(n int, total int64, seed uint64) []int {
	random := rand.New(rand.NewPCG(seed, uint64(n)))
	weights := make([]float64, n)
	sum := 0.0
	for i := range weights {
		weights[i] = math.Exp(1.2 * random.NormFloat64())
		sum += weights[i]
	}
	sizes := make([]int, n)
	for i, w := range weights {
		sizes[i] = max(minPackageSize, int(float64(total)*w/sum))
	}
	return sizes
}

// Signer makes the benchmark's ed25519 publisher key, the same for a
// seed every run (go-crypto reads its randomness from a seeded ChaCha8).
func Signer(seed uint64) (*testrepo.Signer, error) {
	var key [32]byte
	copy(key[:], "pedos-bench-key-"+strconv.FormatUint(seed, 16))
	return testrepo.NewSigner(testrepo.KeySpec{
		Name:    "PedOS benchmark key",
		Created: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Rand:    rand.NewChaCha8(key),
	})
}

// lastRevision is the revision of the batch made last in this process.
var lastRevision atomic.Int64

// nextRevision is the clock's second, or one after the last batch's: the
// batches one process makes have strictly increasing revisions, so that a
// test delivering two in turn sees the second change dom0's freshness state
// also within one second.
func nextRevision() int64 {
	for {
		last := lastRevision.Load()
		if next := max(time.Now().Unix(), last+1); lastRevision.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Batch is a generated delivery: the packages and, named as the UpdateVM
// names them in the stream, the signed metadata they were published with.
type Batch struct {
	Dir      string
	Packages []string // package files, sorted
	Metadata []string // repomd--ID.xml, its .asc, primary--ID.xml
	Bytes    int64    // total size of the package files
	Revision int64    // the metadata's revision and timestamp, Unix seconds (nextRevision)
}

// Files is what the UpdateVM sends: packages, then metadata.
func (b Batch) Files() []string { return append(append([]string(nil), b.Packages...), b.Metadata...) }

// Remove deletes the batch's files.
func (b Batch) Remove() error { return os.RemoveAll(b.Dir) }

// MakeBatch writes packages of the given payload sizes, named
// PREFIXNNNN-1.0-1.noarch.rpm and signed by signer, into dir/packages,
// publishes them as a repository with createrepo_c and a signed repomd.xml
// (revision: now), and exports the metadata the way the UpdateVM does
// (docs/freshness.md) into dir/stream.
func MakeBatch(dir, prefix string, sizes []int, signer *testrepo.Signer) (Batch, error) {
	b := Batch{Dir: dir, Packages: make([]string, len(sizes))}
	pkgDir, streamDir := filepath.Join(dir, "packages"), filepath.Join(dir, "stream")
	for _, d := range []string{pkgDir, streamDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return b, err
		}
	}
	if err := buildPackages(pkgDir, prefix, sizes, signer, b.Packages); err != nil {
		return b, err
	}
	for _, p := range b.Packages {
		info, err := os.Stat(p)
		if err != nil {
			return b, err
		}
		b.Bytes += info.Size()
	}
	b.Revision = nextRevision()
	revision := strconv.FormatInt(b.Revision, 10)
	if out, err := exec.Command("createrepo_c", "--quiet", "--no-database", "--general-compress-type", "gz",
		"--revision", revision, "--set-timestamp-to-revision", dir).CombinedOutput(); err != nil {
		return b, fmt.Errorf("createrepo_c %s: %w\n%s", dir, err, out)
	}
	var err error
	b.Metadata, err = exportMetadata(dir, streamDir, signer)
	return b, err
}

// buildPackages builds the packages on two workers (generation is not
// what is measured, but it should not take longer than the measurement).
func buildPackages(dir, prefix string, sizes []int, signer *testrepo.Signer, paths []string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(sizes))
	next := make(chan int)
	for range 2 {
		wg.Go(func() {
			for i := range next {
				p := testrepo.Package{Name: fmt.Sprintf("%s%04d", prefix, i), Version: "1.0", Release: "1",
					PayloadSize: sizes[i], Compressor: "zstd:fastest"}
				paths[i], errs[i] = testrepo.WriteFile(dir, p, signer)
			}
		})
	}
	for i := range sizes {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// exportMetadata signs repodata/repomd.xml and writes the three files the
// UpdateVM forwards: repomd.xml, its armored signature and the primary
// metadata decompressed.
func exportMetadata(repoDir, streamDir string, signer *testrepo.Signer) ([]string, error) {
	repomd, err := os.ReadFile(filepath.Join(repoDir, "repodata", "repomd.xml"))
	if err != nil {
		return nil, err
	}
	sig, err := signer.SignDetached(repomd)
	if err != nil {
		return nil, err
	}
	var armored bytes.Buffer
	w, err := armor.Encode(&armored, "PGP SIGNATURE", nil)
	if err == nil {
		_, err = w.Write(sig)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, err
	}
	primaries, err := filepath.Glob(filepath.Join(repoDir, "repodata", "*-primary.xml.gz"))
	if err != nil || len(primaries) != 1 {
		return nil, fmt.Errorf("%s: want one primary.xml.gz, found %d (%v)", repoDir, len(primaries), err)
	}
	primary, err := gunzip(primaries[0])
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"repomd--" + RepoID + ".xml":     repomd,
		"repomd--" + RepoID + ".xml.asc": armored.Bytes(),
		"primary--" + RepoID + ".xml":    primary,
	}
	var paths []string
	for name, data := range files {
		path := filepath.Join(streamDir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func gunzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return io.ReadAll(z)
}

// runTool runs a host tool with a clean environment (LC_ALL=C, a private
// HOME with rpm's macros) and returns its combined output on failure.
func runTool(ctx context.Context, home string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = toolEnv(home)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// toolEnv is the environment of rpm tools here (notes/real-tools.md: the
// database path and gpg come from ~/.rpmmacros on Debian).
func toolEnv(home string) []string {
	return []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + home}
}

// rpmMacros fixes Debian's rpm defaults, as pkgtool does.
const rpmMacros = "%_dbpath /var/lib/rpm\n%__gpg /usr/bin/gpg\n"
