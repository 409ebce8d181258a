// Command pedos-bench runs the end-to-end benchmarks of issue 9 and writes
// bench/results.json, bench/results.png and a table. See internal/benchrun
// and docs/performance.md.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"pedos.dev/updates/internal/benchrun"
	"pedos.dev/updates/internal/cmdline"
)

const usage = `usage: pedos-bench [--quick] [--only PARTS] [--micro FILE] [--out DIR]
                   [--bin DIR] [--work DIR] [--seed N] [--commit ID]
       pedos-bench --replot RESULTS.json [--out DIR]

Runs the end-to-end benchmarks (as root: the lab and the unpacker's user
switch need it) and writes DIR/results.json, DIR/results.png and a table on
stdout, and on stderr where it wrote them. scripts/bench.sh (make bench)
runs the packages' micro-benchmarks first and passes their output with
--micro.

  receive  a batch of 10, 100 and 1000 packages (50 MiB, 500 MiB, 2 GiB)
           streamed by qfile-agent into pedos-receive-updates, and into a
           baseline of standard tools (unpacker, rpmkeys -K per file,
           createrepo_c), with the peak RSS of every dom0 process
  memory   the same for 1 package of 1 GiB and 1000 small packages
  update   pedos-dom0-update -y in the lab upgrading 10, 100 and 500
           packages, split into phases

options:
  --quick        a small subset, to check that everything works
  --only PARTS   comma-separated subset of receive,memory,update
  --micro FILE   go test -bench output to merge into the results
  --out DIR      where results.json and results.png go (default bench, and
                 bench/quick with --quick: a quick run never replaces the
                 full run's results)
  --bin DIR      the built programs (default $PEDOS_BIN, else bin)
  --work DIR     scratch space, several GiB (default $TMPDIR or /tmp)
  --seed N       package sizes and key (default 1)
  --commit ID    recorded in the results
  --replot FILE  measure nothing: draw the table and plot of saved results
                 (only --out goes with it)
  --version      print the release and commit, and exit

exit status: 0 done; 1 a benchmark or the results failed (or not root);
2 usage error.

examples:
  make build && sudo bin/pedos-bench --quick --out /tmp/bench
  bin/pedos-bench --only receive --work /dev/shm
  bin/pedos-bench --replot bench/results.json --out /tmp/plot
`

func main() {
	os.Exit(run())
}

func run() int {
	cli := cmdline.Usage{Command: "pedos-bench", Text: usage}
	fs := cli.FlagSet()
	quick := fs.Bool("quick", false, "")
	only := fs.String("only", "receive,memory,update", "")
	micro := fs.String("micro", "", "")
	out := fs.String("out", "", "")
	bin := fs.String("bin", cmp.Or(os.Getenv("PEDOS_BIN"), "bin"), "")
	work := fs.String("work", os.TempDir(), "")
	seed := fs.Uint64("seed", 1, "")
	commit := fs.String("commit", "", "")
	replot := fs.String("replot", "", "")
	cli.ParseOptionsOnly(fs, os.Args[1:])
	if *out == "" {
		*out = "bench"
		if *quick {
			*out = filepath.Join("bench", "quick")
		}
	}
	if *replot != "" {
		// The other options choose what to measure: ignoring one would
		// let a person believe it was applied.
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "replot" && f.Name != "out" {
				cli.Fail("--%s: --replot measures nothing, only --out goes with it", f.Name)
			}
		})
		if err := redraw(*replot, *out); err != nil {
			fmt.Fprintf(os.Stderr, "pedos-bench: %v\n", err)
			return 1
		}
		return 0
	}
	plan := benchrun.FullPlan()
	if *quick {
		plan = benchrun.QuickPlan()
	}
	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p != "receive" && p != "memory" && p != "update" {
			cli.Fail("--only: unknown part %q", p)
		}
		parts[p] = true
	}
	if !parts["receive"] {
		plan.Receive = nil
	}
	if !parts["memory"] {
		plan.Memory = nil
	}
	if !parts["update"] {
		plan.Update = nil
	}
	if err := bench(plan, *quick, *micro, *out, *bin, *work, *seed, *commit); err != nil {
		fmt.Fprintf(os.Stderr, "pedos-bench: %v\n", err)
		return 1
	}
	return 0
}

func bench(plan benchrun.Plan, quick bool, micro, out, bin, work string, seed uint64, commit string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the unpacker switches to an unprivileged user and the lab needs namespaces")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(work, "pedos-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// What the results need besides the run is read and made first: a mistake there
	// must not cost a run of minutes.
	var micros []benchrun.Micro
	if micro != "" {
		f, err := os.Open(micro)
		if err != nil {
			return fmt.Errorf("--micro: %w", err)
		}
		micros, err = benchrun.ParseMicro(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--micro %s: %w", micro, err)
		}
	}
	// Found before the run, not after minutes of generating packages: a relative
	// --bin (bin by default) is read from the current directory.
	for _, program := range []string{"pedos-receive-updates", "qfile-dom0-unpacker", "qfile-agent", "pedos-lab"} {
		if info, err := os.Stat(filepath.Join(bin, program)); err != nil || info.Mode()&0o111 == 0 {
			return fmt.Errorf("--bin %s holds no program %s: run make build, and pedos-bench from the checkout or with --bin DIR", bin, program)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	h := &benchrun.Harness{Bin: bin, Work: scratch, Seed: seed, Log: os.Stderr}
	res, err := h.Run(ctx, plan)
	if err != nil {
		return err
	}
	res.Quick, res.Commit, res.Micro = quick, commit, micros
	if err := res.WriteJSON(filepath.Join(out, "results.json")); err != nil {
		return err
	}
	wrote(filepath.Join(out, "results.json"))
	return report(res, out)
}

// report writes the plot into out and the table on stdout.
func report(res *benchrun.Results, out string) error {
	if err := res.WritePlot(filepath.Join(out, "results.png")); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	res.WriteTable(os.Stdout)
	wrote(filepath.Join(out, "results.png"))
	return nil
}

// wrote says on stderr where a result went (stdout has the table).
func wrote(path string) { fmt.Fprintln(os.Stderr, "pedos-bench: wrote", path) }

// redraw reports saved results again (after a change to the plot or the
// table, or to compare runs).
func redraw(saved, out string) error {
	b, err := os.ReadFile(saved)
	if err != nil {
		return err
	}
	var res benchrun.Results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", saved, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	return report(&res, out)
}
