package repometa

import (
	"bufio"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A distribution's update repository: 60,000 packages in primary, 2,000
// installed in dom0, every one of them updated in this batch.
const (
	benchPackages  = 60_000
	benchInstalled = 2_000
)

// benchDigest is the made-up SHA-256 of package i's file.
func benchDigest(i int) [sha256Size]byte { return sha256.Sum256([]byte(fmt.Sprint("package", i))) }

// writeBenchPrimary writes a primary.xml of that many packages shaped like
// Fedora's (about 2 KB a package: description, provides, requires, a few
// files) and returns its size and SHA-256.
func writeBenchPrimary(tb testing.TB, path string, packages int) (int64, [sha256Size]byte) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	w := bufio.NewWriter(io.MultiWriter(f, h))
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="%d">
`, packages)
	for i := range packages {
		name, sum := fmt.Sprintf("package%05d", i), benchDigest(i)
		fmt.Fprintf(w, `<package type="rpm">
  <name>%[1]s</name>
  <arch>x86_64</arch>
  <version epoch="0" ver="1.1.%[2]d" rel="1.fc41"/>
  <checksum type="sha256" pkgid="YES">%[3]s</checksum>
  <summary>The %[1]s library and tools for doing useful things</summary>
  <description>%[1]s provides a set of functions and command line tools. This package
contains the shared library, its configuration files and the documentation
that comes with it; development headers are in %[1]s-devel. Upstream releases
are checked for security fixes before they reach the stable repository.</description>
  <packager>Fedora Project</packager>
  <url>https://example.org/projects/%[1]s</url>
  <time file="1740787200" build="1740700800"/>
  <size package="%[4]d" installed="%[5]d" archive="%[5]d"/>
  <location href="Packages/p/%[1]s-1.1.%[2]d-1.fc41.x86_64.rpm"/>
  <format>
    <rpm:license>MIT AND BSD-3-Clause</rpm:license>
    <rpm:vendor>Fedora Project</rpm:vendor>
    <rpm:group>Unspecified</rpm:group>
    <rpm:buildhost>buildvm-x86-07.iad2.fedoraproject.org</rpm:buildhost>
    <rpm:sourcerpm>%[1]s-1.1.%[2]d-1.fc41.src.rpm</rpm:sourcerpm>
    <rpm:header-range start="4504" end="23561"/>
    <rpm:provides>
      <rpm:entry name="%[1]s" flags="EQ" epoch="0" ver="1.1.%[2]d" rel="1.fc41"/>
      <rpm:entry name="%[1]s(x86-64)" flags="EQ" epoch="0" ver="1.1.%[2]d" rel="1.fc41"/>
      <rpm:entry name="lib%[1]s.so.1()(64bit)"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="libc.so.6(GLIBC_2.34)(64bit)"/>
      <rpm:entry name="libc.so.6()(64bit)"/>
      <rpm:entry name="libcrypto.so.3()(64bit)"/>
      <rpm:entry name="libz.so.1()(64bit)"/>
      <rpm:entry name="rtld(GNU_HASH)"/>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="config(%[1]s)" flags="EQ" epoch="0" ver="1.1.%[2]d" rel="1.fc41"/>
    </rpm:requires>
    <file>/etc/%[1]s.conf</file>
    <file>/usr/bin/%[1]s</file>
    <file>/usr/bin/%[1]s-tool</file>
  </format>
</package>
`, name, i%50, hex.EncodeToString(sum[:]), 100_000+i, 300_000+i)
	}
	fmt.Fprintln(w, "</metadata>")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatal(err)
	}
	return size, [sha256Size]byte(h.Sum(nil))
}

// writeBenchRepo writes into dir the signed metadata of a repository of
// that many packages, and its key; it returns the key's path, the
// primary's and the primary's size.
func writeBenchRepo(tb testing.TB, dir string, packages int) (keyPath, primary string, size int64) {
	primary = filepath.Join(dir, "primary--updates.xml")
	size, sum := writeBenchPrimary(tb, primary, packages)
	repomd := fmt.Appendf(nil, `<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>%d</revision>
<data type="primary"><open-checksum type="sha256">%x</open-checksum><location href="repodata/primary.xml.zst"/>
<timestamp>%d</timestamp><open-size>%d</open-size></data></repomd>`, day0.Unix(), sum, day0.Unix(), size)
	pub := newPublisher(tb, nil)
	for name, data := range map[string][]byte{"repomd--updates.xml": repomd, "repomd--updates.xml.asc": pub.sign(tb, repomd, day0, crypto.SHA256)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return writePublicKey(tb, pub.entity), primary, size
}

// BenchmarkFreshness60k runs the whole freshness verdict and the state
// commit, in a child process so that its peak RSS is its own, for a
// primary of 60,000 packages. Baseline: hashing that primary once in this
// process (the least any check of it must do).
func BenchmarkFreshness60k(b *testing.B) {
	dir := b.TempDir()
	keyPath, primary, size := writeBenchRepo(b, dir, benchPackages)

	var checkTime, checkCPU, hashTime time.Duration
	var maxRSS int64
	for b.Loop() {
		start := time.Now()
		cmd := exec.Command(os.Args[0], "-test.run=^TestFreshnessBatch$")
		cmd.Env = append(os.Environ(), "REPOMETA_BENCH_DIR="+dir, "REPOMETA_BENCH_KEY="+keyPath)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		checkTime += time.Since(start)
		maxRSS = max(maxRSS, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
		checkCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()

		start = time.Now()
		f, err := os.Open(primary)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(sha256.New(), f); err != nil {
			b.Fatal(err)
		}
		f.Close()
		hashTime += time.Since(start)
	}
	b.ReportMetric(float64(checkTime.Milliseconds())/float64(b.N), "ms-check")
	b.ReportMetric(float64(checkCPU.Milliseconds())/float64(b.N), "ms-cpu") // less sensitive to a busy machine
	b.ReportMetric(float64(checkTime)/float64(hashTime), "x-sha256")
	b.ReportMetric(float64(maxRSS)/1024, "MiB-peak-rss")
	b.ReportMetric(float64(size)/(1<<20), "MiB-primary")
}

// TestFreshnessBatch checks a whole batch against a repository of the
// benchmark's shape: every installed package updated, the repository's
// first metadata. Run by BenchmarkFreshness60k as its child, with the
// 60,000 packages it wrote (REPOMETA_BENCH_DIR); in a test run, with 600.
func TestFreshnessBatch(t *testing.T) {
	dir, keyPath, installed := os.Getenv("REPOMETA_BENCH_DIR"), os.Getenv("REPOMETA_BENCH_KEY"), benchInstalled
	if dir == "" {
		dir, installed = t.TempDir(), 200
		keyPath, _, _ = writeBenchRepo(t, dir, 600)
	}
	checkBenchBatch(t, dir, keyPath, installed)
}

// checkBenchBatch is what dom0 does for one batch of that many installed
// packages, each updated, against the repository in dir.
func checkBenchBatch(t testing.TB, dir, keyPath string, installedCount int) {
	key, err := LoadPinnedKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	repomd, err := os.ReadFile(filepath.Join(dir, "repomd--updates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(filepath.Join(dir, "repomd--updates.xml.asc"))
	if err != nil {
		t.Fatal(err)
	}
	primary, err := os.Open(filepath.Join(dir, "primary--updates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	var installed []NEVRA
	var received []ReceivedPackage
	for i := range installedCount {
		name := fmt.Sprintf("package%05d", i)
		installed = append(installed, nevra(t, fmt.Sprintf("%s-1.0-1.fc41.x86_64", name)))
		n := nevra(t, fmt.Sprintf("%s-1.1.%d-1.fc41.x86_64", name, i%50))
		received = append(received, ReceivedPackage{File: n.String() + ".rpm", Package: Package{NEVRA: n, Size: int64(100_000 + i), SHA256: benchDigest(i)}})
	}
	s := loadState(t, t.TempDir(), day0)
	v := s.Evaluate(Batch{
		Repos:     []RepoFiles{{ID: "updates", Key: key, Repomd: repomd, Signature: sig, Primary: primary}},
		Received:  received,
		Installed: installed,
		Request:   Request{Action: "upgrade"},
	})
	// A fresh state: the repository's first metadata, and nothing else.
	if !v.Accepted() || len(v.Findings) != 1 || v.Findings[0].Kind != FirstUse {
		t.Fatalf("verdict %+v", v.Findings)
	}
	if err := s.Commit(v); err != nil {
		t.Fatal(err)
	}
}
