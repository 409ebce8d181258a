package rpm_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
)

const (
	benchPackages    = 200
	benchPayloadSize = 2500 << 10 // 200 × ~2.5 MiB ≈ 500 MiB
)

var (
	benchOnce  sync.Once
	benchFiles []string
	benchBytes int64
	benchErr   error
)

// benchCorpus generates the packages once per test binary, deterministically
// (random payloads that do not compress; zstd keeps generation fast).
func benchCorpus(b *testing.B, f *fixture) ([]string, int64) {
	benchOnce.Do(func() {
		dir := filepath.Join(f.dir, "bench")
		if benchErr = os.Mkdir(dir, 0o755); benchErr != nil {
			return
		}
		for i := range benchPackages {
			p := testrepo.Package{Name: fmt.Sprintf("bench%03d", i), Version: "1.0", Release: "1", PayloadSize: benchPayloadSize, Compressor: "zstd:fastest"}
			path, err := testrepo.WriteFile(dir, p, f.ed)
			if err != nil {
				benchErr = err
				return
			}
			info, _ := os.Stat(path)
			benchFiles, benchBytes = append(benchFiles, path), benchBytes+info.Size()
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchFiles, benchBytes
}

// BenchmarkVerify200 compares, over the same ~500 MiB of packages in one
// run: raw SHA-256 (the hashing baseline), the native verifier, one strict
// rpmkeys call per package and one rpmkeys call for all. Peak RSS of the
// native verifier is measured in pedos-rpmcheck --no-crosscheck.
func BenchmarkVerify200(b *testing.B) {
	f := keys(b)
	if f.rpmkeys == nil {
		b.Skip("rpmkeys not installed")
	}
	files, total := benchCorpus(b, f)
	mib := float64(total) / (1 << 20)
	ctx := context.Background()
	timeIt := func(run func() error) time.Duration {
		start := time.Now()
		if err := run(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	b.ResetTimer()
	for range b.N {
		buf := make([]byte, 256<<10) // the verifier's buffer size
		hashFile := func(r io.Reader) error { _, err := io.CopyBuffer(sha256.New(), r, buf); return err }
		timeIt(func() error { return eachFile(files, hashFile) }) // warm the page cache
		sha := timeIt(func() error { return eachFile(files, hashFile) })
		native := timeIt(func() error {
			v := &rpm.Verifier{Keyring: f.keyring}
			return eachFile(files, func(r io.Reader) error { _, err := v.Verify(r, io.Discard); return err })
		})
		each := timeIt(func() error {
			for _, p := range files {
				if err := f.rpmkeys.CheckBatch(ctx, []string{p})[p]; err != nil {
					return err
				}
			}
			return nil
		})
		batch := timeIt(func() error { return firstError(f.rpmkeys.CheckBatch(ctx, files)) })
		b.ReportMetric(mib/sha.Seconds(), "sha256_MiB/s")
		b.ReportMetric(mib/native.Seconds(), "native_MiB/s")
		b.ReportMetric(float64(len(files))/native.Seconds(), "native_pkgs/s")
		b.ReportMetric(float64(len(files))/each.Seconds(), "rpmkeys_each_pkgs/s")
		b.ReportMetric(float64(len(files))/batch.Seconds(), "rpmkeys_batch_pkgs/s")
		b.ReportMetric(sha.Seconds()/native.Seconds(), "native/sha256_speed")
		b.ReportMetric(each.Seconds()/native.Seconds(), "native/rpmkeys_each_speedup")
		b.ReportMetric(batch.Seconds()/native.Seconds(), "native/rpmkeys_batch_speedup")
		b.ReportMetric(peakRSS(b, testbin.Path(b, "pedos-rpmcheck"), append([]string{"--keyring", f.dir, "--no-crosscheck"}, files...)...), "rpmcheck_peak_RSS_KiB")
	}
}

// peakRSS runs a command under GNU time and returns its peak RSS in KiB.
// Rusage from our own wait would not do: a child started by this large
// process inherits its memory high-water mark across exec on Linux.
func peakRSS(b *testing.B, name string, args ...string) float64 {
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		b.Log("/usr/bin/time not installed: peak RSS not measured")
		return 0
	}
	out := filepath.Join(b.TempDir(), "rss")
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", out, name}, args...)...)
	if output, err := cmd.Output(); err != nil {
		b.Fatalf("%s: %v\n%s", name, err, output)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var kib float64
	if _, err := fmt.Sscan(string(data), &kib); err != nil {
		b.Fatal(err)
	}
	return kib
}

func eachFile(files []string, use func(io.Reader) error) error {
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = use(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func firstError(verdicts map[string]error) error {
	for _, err := range verdicts {
		if err != nil {
			return err
		}
	}
	return nil
}
