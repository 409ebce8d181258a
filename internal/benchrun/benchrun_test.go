package benchrun

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSizes(t *testing.T) {
	const total = 500 << 20
	sizes := Sizes(100, total, 7)
	if !reflect.DeepEqual(sizes, Sizes(100, total, 7)) {
		t.Fatal("Sizes is not deterministic for a seed")
	}
	if reflect.DeepEqual(sizes, Sizes(100, total, 8)) {
		t.Fatal("Sizes ignores the seed")
	}
	sum, smallest, largest := 0, sizes[0], sizes[0]
	for _, s := range sizes {
		sum += s
		smallest, largest = min(smallest, s), max(largest, s)
	}
	if sum < total*99/100 || sum > total*101/100 {
		t.Errorf("sizes add up to %d, want about %d", sum, total)
	}
	if smallest < minPackageSize || largest < 4*smallest {
		t.Errorf("sizes from %d to %d: want a spread above %d", smallest, largest, minPackageSize)
	}
}

func TestParseMicro(t *testing.T) {
	out := `goos: linux
pkg: pedos.dev/updates/internal/qrexec
cpu: AMD EPYC
BenchmarkThroughput-2   	       1	9110299893 ns/op	 117.86 MB/s	       248.1 call-MB/s
BenchmarkEmptyCalls/baseline-direct-exec-2         	     500	   1393094 ns/op	       719.7 calls/s
PASS
ok  	pedos.dev/updates/internal/qrexec	9.322s
pkg: pedos.dev/updates/internal/rpm
BenchmarkVerify200-2   	       1	16436299651 ns/op	         7.574 native/rpmkeys_batch_speedup
`
	got, err := ParseMicro(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Micro{
		{"pedos.dev/updates/internal/qrexec", "BenchmarkThroughput", map[string]float64{"ns/op": 9110299893, "MB/s": 117.86, "call-MB/s": 248.1}},
		{"pedos.dev/updates/internal/qrexec", "BenchmarkEmptyCalls/baseline-direct-exec", map[string]float64{"ns/op": 1393094, "calls/s": 719.7}},
		{"pedos.dev/updates/internal/rpm", "BenchmarkVerify200", map[string]float64{"ns/op": 16436299651, "native/rpmkeys_batch_speedup": 7.574}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestRusageLog(t *testing.T) {
	l, err := newRusageLog(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	log := "rpmkeys 6144 0.10\nCommand exited with non-zero status 1\nrpmkeys 8192 0.20\ncreaterepo_c 18432 0.05\n"
	if err := os.WriteFile(l.path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := l.processes()
	if err != nil {
		t.Fatal(err)
	}
	want := []Process{{Name: "rpmkeys", Runs: 2, PeakMiB: 8, Seconds: 0.30000000000000004}, {Name: "createrepo_c", Runs: 1, PeakMiB: 18, Seconds: 0.05}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestWrapperMeasures runs a program through a wrapper script and checks
// that GNU time recorded it.
func TestWrapperMeasures(t *testing.T) {
	if _, err := os.Stat(gnuTime); err != nil {
		t.Skip("GNU time is not installed")
	}
	dir := t.TempDir()
	l, err := newRusageLog(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "true")
	if err := l.wrapper(wrapper, "true", "/bin/true"); err != nil {
		t.Fatal(err)
	}
	if out, err := l.command(t.Context(), "sh", "/bin/sh", "-c", wrapper).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	procs, err := l.processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 || procs[0].Name != "true" || procs[1].Name != "sh" || procs[0].PeakMiB <= 0 {
		t.Errorf("got %+v, want a record for true, then one for sh", procs)
	}
}

func TestLineClock(t *testing.T) {
	var c lineClock
	for _, chunk := range []string{"==> Sending\nsys-firewall: Downl", "oaded 3 package(s)\n", "==> Running dnf upgrade\n", "partial"} {
		if _, err := c.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if c.first("==> Sending").IsZero() || c.firstMatch(downloadedLine).IsZero() || c.first("==> Running dnf").IsZero() {
		t.Errorf("lines not found:\n%s", c.text())
	}
	if !c.first("partial").IsZero() {
		t.Error("an unfinished line was counted")
	}
}

func TestWritePlotAndTable(t *testing.T) {
	procs := []Process{{Name: "qfile-dom0-unpacker", Runs: 1, PeakMiB: 2.5, Seconds: 0.1}, {Name: "pedos-receive-updates", Runs: 1, PeakMiB: 11, Seconds: 1}}
	r := &Results{
		Machine: "test",
		Receive: []ReceiveResult{{Packages: 10, Bytes: 50 << 20, OursSeconds: 1, BaselineSeconds: 2, Ratio: 2, OursMiBps: 50, BaselineMiBps: 25, Ours: procs, Baseline: procs[:1]}},
		Update:  []UpdateResult{{Packages: 500, TotalSeconds: 10, Phases: map[string]float64{"sync": 1, "download": 3, "transfer": 1, "verify": 1, "publish": 1, "dnf": 3}}},
		Memory:  []ReceiveResult{{Case: "one", Ours: procs}, {Case: "two", Ours: procs[1:]}},
	}
	path := filepath.Join(t.TempDir(), "results.png")
	if err := r.WritePlot(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("results.png: %v", err)
	}
	var table bytes.Buffer
	r.WriteTable(&table)
	for _, want := range []string{"2.00×", "40% (<25% MISSED)", "pedos-receive-updates 1.00 (1 run(s))", "qfile-dom0-unpacker 0.10"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// TestPhaseSummary: the progress line gives the phases in their order,
// formatted, not as a Go map.
func TestPhaseSummary(t *testing.T) {
	u := UpdateResult{Phases: map[string]float64{"sync": 0.12, "download": 0.3, "transfer": 1, "verify": 2.5, "publish": 0.5, "dnf": 4}}
	want := "sync 0.12 s, download 0.30 s, transfer 1.00 s, verify 2.50 s, publish 0.50 s, dnf 4.00 s"
	if got := u.PhaseSummary(); got != want {
		t.Errorf("PhaseSummary() = %q, want %q", got, want)
	}
}

// The batches one process makes have strictly increasing revisions, none
// before the clock's second, even when many are made at once: a test
// delivering two in turn must see the second change dom0's freshness state
// (verify.md: dom0 "keeps per repository ... the highest accepted
// <revision> and timestamp").
func TestNextRevisionIncreases(t *testing.T) {
	// Enough calls at once that one without its compare-and-swap repeats a
	// revision; those run up to an hour ahead of the clock, which the
	// batches of later tests need not inherit.
	saved := lastRevision.Load()
	t.Cleanup(func() { lastRevision.Store(saved) })
	before := time.Now().Unix()
	const workers, each = 8, 500
	got := make(chan int64, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			last := int64(0)
			for range each {
				r := nextRevision()
				if r <= last {
					t.Errorf("revision %d after %d in one goroutine", r, last)
				}
				last = r
				got <- r
			}
		})
	}
	wg.Wait()
	close(got)
	seen := map[int64]bool{}
	for r := range got {
		if r < before || seen[r] {
			t.Errorf("revision %d: before the clock (%d) or given twice", r, before)
		}
		seen[r] = true
	}
}
