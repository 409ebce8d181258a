package benchrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"pedos.dev/updates/internal/testrepo"
)

// Shape is a generated batch: how many packages and about how many bytes.
type Shape struct {
	Case     string // a label for the memory comparison
	Packages int
	Bytes    int64
	Runs     int // how many times each side runs (default 1); the fastest counts
}

// Plan is what one pedos-bench run measures.
type Plan struct {
	Receive []Shape // issue 9 part 1: ours against the baseline
	Memory  []Shape // part 3: peak RSS of every dom0 process
	// Update lists the batch sizes of part 2, each a pedos-dom0-update -y
	// in one lab whose dom0 has max(Update) packages installed;
	// UpdateBytes is the total size of the largest batch.
	Update      []int
	UpdateBytes int64
}

// FullPlan is issue 9's: 10, 100 and 1000 packages of 50 MiB to 2 GiB
// (the short runs repeated); updates of 10, 100 and 500 packages; 1 GiB
// in one package against 1000 small ones.
func FullPlan() Plan {
	return Plan{
		Receive:     []Shape{{Packages: 10, Bytes: 50 << 20, Runs: 3}, {Packages: 100, Bytes: 500 << 20, Runs: 2}, {Packages: 1000, Bytes: 2 << 30}},
		Memory:      []Shape{{Case: "1 package of 1 GiB", Packages: 1, Bytes: 1 << 30}, {Case: "1000 small packages", Packages: 1000, Bytes: 16 << 20}},
		Update:      []int{10, 100, 500},
		UpdateBytes: 100 << 20,
	}
}

// QuickPlan is a subset that checks the harness works in a few minutes
// (BENCH_QUICK=1).
func QuickPlan() Plan {
	return Plan{
		Receive:     []Shape{{Packages: 10, Bytes: 20 << 20}, {Packages: 100, Bytes: 50 << 20}},
		Memory:      []Shape{{Case: "1 package of 64 MiB", Packages: 1, Bytes: 64 << 20}, {Case: "100 small packages", Packages: 100, Bytes: 2 << 20}},
		Update:      []int{5, 20},
		UpdateBytes: 5 << 20,
	}
}

// Harness runs the end-to-end benchmarks with the project's built programs.
type Harness struct {
	Bin  string    // directory of the built programs (make build)
	Work string    // scratch directory, on the file system being measured
	Seed uint64    // package sizes and the publisher key
	Log  io.Writer // progress lines
	// LabDir is where the whole-update benchmark brings its lab up.
	LabDir string
	signer *testrepo.Signer
}

// Run carries out the plan. The micro-benchmarks are run separately (by
// scripts/bench.sh) and merged by the caller.
func (h *Harness) Run(ctx context.Context, plan Plan) (*Results, error) {
	signer, err := Signer(h.Seed)
	if err != nil {
		return nil, err
	}
	h.signer = signer
	res := &Results{Machine: Machine(h.Work), Date: time.Now().UTC().Format(time.RFC3339), Seed: h.Seed}
	for _, shape := range plan.Receive {
		r, err := h.receiveShape(ctx, shape)
		if err != nil {
			return res, err
		}
		res.Receive = append(res.Receive, r)
	}
	for _, shape := range plan.Memory {
		r, err := h.receiveShape(ctx, shape)
		if err != nil {
			return res, err
		}
		r.Case = shape.Case
		res.Memory = append(res.Memory, r)
	}
	if len(plan.Update) > 0 {
		if res.Update, err = h.Updates(ctx, plan.Update, plan.UpdateBytes); err != nil {
			return res, err
		}
	}
	return res, nil
}

// receiveShape generates a batch, measures it both ways and removes it.
func (h *Harness) receiveShape(ctx context.Context, shape Shape) (ReceiveResult, error) {
	h.logf("receive: generating %d package(s), %d MiB", shape.Packages, shape.Bytes>>20)
	dir, err := os.MkdirTemp(h.Work, "batch-")
	if err != nil {
		return ReceiveResult{}, err
	}
	sizes := Sizes(shape.Packages, shape.Bytes, h.Seed)
	b, err := MakeBatch(dir, "bench", sizes, h.signer)
	// Generation holds whole packages in memory; give it back before
	// measuring anything.
	debug.FreeOSMemory()
	if err != nil {
		os.RemoveAll(dir)
		return ReceiveResult{}, err
	}
	defer b.Remove()
	h.logf("receive: %d package(s), %.0f MiB: pedos-receive-updates, then the baseline", len(b.Packages), float64(b.Bytes)/(1<<20))
	r, err := h.Receive(ctx, b, max(1, shape.Runs))
	if err == nil {
		h.logf("receive: ours %.2f s, baseline %.2f s (%.2f×)", r.OursSeconds, r.BaselineSeconds, r.Ratio)
	}
	return r, err
}

func (h *Harness) program(name string) string { return filepath.Join(h.Bin, name) }

func (h *Harness) logf(format string, args ...any) {
	if h.Log != nil {
		fmt.Fprintf(h.Log, "pedos-bench: "+format+"\n", args...)
	}
}
