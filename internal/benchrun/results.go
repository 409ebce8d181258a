package benchrun

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"
)

// Results is bench/results.json: comparable across commits.
type Results struct {
	Machine string          `json:"machine"`
	Date    string          `json:"date"`
	Commit  string          `json:"commit,omitempty"`
	Quick   bool            `json:"quick,omitempty"`
	Seed    uint64          `json:"seed"`
	Receive []ReceiveResult `json:"receive"`
	Update  []UpdateResult  `json:"update"`
	Memory  []ReceiveResult `json:"memory"`
	Micro   []Micro         `json:"micro"`
}

// Micro is one `go test -bench` result line of the packages'
// micro-benchmarks: every metric it reported, by unit.
type Micro struct {
	Package string             `json:"package"`
	Name    string             `json:"name"`
	Metrics map[string]float64 `json:"metrics"`
}

// ParseMicro reads `go test -bench` output: "pkg:" lines name the package
// of the Benchmark lines that follow, each "NAME-CPUS N VALUE UNIT ...".
func ParseMicro(r io.Reader) ([]Micro, error) {
	var out []Micro
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 2 && fields[0] == "pkg:":
			pkg = fields[1]
		case len(fields) >= 4 && len(fields)%2 == 0 && strings.HasPrefix(fields[0], "Benchmark"):
			name := trimProcs(fields[0])
			m := Micro{Package: pkg, Name: name, Metrics: map[string]float64{}}
			for i := 2; i+1 < len(fields); i += 2 {
				v, err := strconv.ParseFloat(fields[i], 64)
				if err != nil {
					return nil, fmt.Errorf("benchmark %s: metric %q: %w", name, fields[i+1], err)
				}
				m.Metrics[fields[i+1]] = v
			}
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// Machine describes this host for the results: CPU, cores, memory, kernel
// and the file system of the scratch directory.
func Machine(scratch string) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	var si unix.Sysinfo_t
	memGiB := 0.0
	if unix.Sysinfo(&si) == nil {
		memGiB = float64(si.Totalram) * float64(si.Unit) / (1 << 30)
	}
	var uts unix.Utsname
	kernel := ""
	if unix.Uname(&uts) == nil {
		kernel = unix.ByteSliceToString(uts.Release[:])
	}
	fs := "?"
	if out, err := exec.Command("df", "--output=fstype", scratch).Output(); err == nil {
		if lines := strings.Fields(string(out)); len(lines) == 2 {
			fs = lines[1]
		}
	}
	return fmt.Sprintf("%s, %d cores, %.0f GiB RAM, Linux %s, scratch on %s, %s", cpu, runtime.NumCPU(), memGiB, kernel, fs, runtime.Version())
}

// WriteJSON writes the results, indented.
func (r *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Targets of issue 9 (this machine, 2 cores).
const (
	targetRatioSmall  = 2.0  // 10 packages
	targetRatioLarge  = 3.0  // 100 and 1000 packages
	targetRSSMiB      = 64.0 // every dom0 process
	targetOursShare   = 0.25 // our phases of the whole update at N = 500
	targetUpdateLarge = 500
)

// ratioTarget is the receive target for a batch of n packages.
func ratioTarget(n int) float64 {
	if n >= 100 {
		return targetRatioLarge
	}
	return targetRatioSmall
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// WriteTable prints the results as plain-text tables (make bench's
// output; docs/performance.md carries a copy).
func (r *Results) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "machine: %s\ndate: %s  commit: %s\n", r.Machine, r.Date, r.Commit)
	if len(r.Micro) > 0 {
		fmt.Fprintln(w, "\n== micro-benchmarks (go test -bench; each measures its own baseline) ==")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, m := range r.Micro {
			fmt.Fprintf(tw, "%s.%s\t%s\n", shortPackage(m.Package), m.Name, formatMetrics(m.Metrics))
		}
		tw.Flush()
	}
	if len(r.Receive) > 0 {
		fmt.Fprintln(w, "\n== receive pipeline: pedos-receive-updates vs unpacker + rpmkeys -K per file + createrepo_c ==")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "packages\tMiB\tours s\tours MiB/s\tbaseline s\tbaseline MiB/s\tratio\ttarget\tours peak RSS MiB\tbaseline peak RSS MiB\tload\t")
		for _, x := range r.Receive {
			t := ratioTarget(x.Packages)
			fmt.Fprintf(tw, "%d\t%.0f\t%.2f\t%.0f\t%.2f\t%.0f\t%.2f×\t≥%.0f× %s\t%.1f %s\t%.1f\t%.1f\t\n", x.Packages, float64(x.Bytes)/(1<<20),
				x.OursSeconds, x.OursMiBps, x.BaselineSeconds, x.BaselineMiBps, x.Ratio, t, verdict(x.Ratio >= t),
				x.OursPeakRSSMiB, verdict(x.OursPeakRSSMiB < targetRSSMiB), x.BaselinePeakRSSMiB, x.LoadAvg)
		}
		tw.Flush()
		fmt.Fprintln(w, "where the time goes (wall seconds per process, summed over its runs; the service's children run while it verifies, and rpmkeys beside createrepo_c, so they overlap):")
		for _, x := range r.Receive {
			fmt.Fprintf(w, "  %4d ours:     %s\n", x.Packages, timeSplit(x.Ours))
			fmt.Fprintf(w, "  %4d baseline: %s\n", x.Packages, timeSplit(x.Baseline))
		}
	}
	if len(r.Update) > 0 {
		fmt.Fprintln(w, "\n== whole update: pedos-dom0-update -y in the lab, seconds by phase ==")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "packages\ttotal s\t")
		for _, p := range Phases {
			fmt.Fprintf(tw, "%s\t", p)
		}
		fmt.Fprintln(tw, "ours\tours ms/pkg\tload\t")
		for _, u := range r.Update {
			fmt.Fprintf(tw, "%d\t%.2f\t", u.Packages, u.TotalSeconds)
			for _, p := range Phases {
				fmt.Fprintf(tw, "%.2f\t", u.Phases[p])
			}
			share := u.OursShare()
			note := ""
			if u.Packages == targetUpdateLarge {
				note = fmt.Sprintf(" (<%.0f%% %s)", 100*targetOursShare, verdict(share < targetOursShare))
			}
			fmt.Fprintf(tw, "%.0f%%%s\t%.1f\t%.1f\t\n", 100*share, note, 1000*u.OursSeconds()/float64(u.Packages), u.LoadAvg)
		}
		tw.Flush()
		fmt.Fprintln(w, "ours = sync + transfer + verify + publish; download (UpdateVM dnf and mirror) and dnf (dom0 install) are not ours")
	}
	if len(r.Memory) > 0 {
		fmt.Fprintln(w, "\n== memory: peak RSS (MiB) of every dom0 process ==")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "case\tpipeline\tprocess\truns\tpeak RSS MiB\t")
		for _, m := range r.Memory {
			for _, side := range []struct {
				name  string
				procs []Process
			}{{"ours", m.Ours}, {"baseline", m.Baseline}} {
				for _, p := range side.procs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t\n", m.Case, side.name, p.Name, p.Runs, p.PeakMiB)
				}
			}
		}
		tw.Flush()
	}
}

// trimProcs drops the -GOMAXPROCS suffix go test adds to a benchmark's name.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

// timeSplit lists each process's wall-clock seconds, summed over its runs.
func timeSplit(procs []Process) string {
	var parts []string
	for _, p := range procs {
		parts = append(parts, fmt.Sprintf("%s %.2f (%d run(s))", p.Name, p.Seconds, p.Runs))
	}
	return strings.Join(parts, ", ")
}

func shortPackage(pkg string) string {
	_, short, _ := strings.Cut(pkg, "/internal/")
	if short == "" {
		return pkg
	}
	return short
}

// formatMetrics lists a benchmark's metrics by unit, sorted, without the
// per-op time that one-iteration benchmarks make meaningless.
func formatMetrics(metrics map[string]float64) string {
	var parts []string
	for unit, v := range metrics {
		if unit == "ns/op" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%s", unit, strconv.FormatFloat(v, 'g', 4, 64)))
	}
	slices.Sort(parts)
	return strings.Join(parts, "  ")
}
