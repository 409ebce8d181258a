package attack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"pedos.dev/updates/internal/lab"
)

// Row is one attack of threats.md (or a control or load row), staged in a
// lab of its group.
type Row struct {
	ID     string
	Attack string // what the attacker does, in one line
	Group  string // rows of a group share one lab, in order
	run    func(e *Env) (string, error)
}

// Groups, in the order they run. Rows that leave dom0 changed on purpose
// (faults that recover, the honest path) or that move dom0's time floor
// (M9) get their own lab.
var groups = []string{"stream", "packages", "calls", "metadata", "m9", "faults", "load"}

// Rows is the whole suite, in report order.
func Rows() []Row {
	var all []Row
	for _, rows := range [][]Row{streamRows, packageRows, metadataRows, callRows, faultRows, loadRows} {
		all = append(all, rows...)
	}
	return all
}

// LabPrograms are the commands of cmd/ that a lab copies into its domains
// (tests build them with internal/testbin).
var LabPrograms = []string{
	"pedos-lab", "pedos-dom0-update", "pedos-receive-updates", "pedos-download-dom0-updates",
	"qfile-agent", "qfile-dom0-unpacker", "qrexec-daemon", "qrexec-agent", "qrexec-client",
	"qrexec-client-vm", "pedos-run", "pedos-policy-eval", "pedos-rpmcheck",
}

// Outcome is a row's verdict.
type Outcome string

const (
	Pass Outcome = "PASS"
	Fail Outcome = "FAIL"
	Skip Outcome = "SKIP"
)

// RowResult is one line of the report.
type RowResult struct {
	ID      string  `json:"id"`
	Attack  string  `json:"attack"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason"`
	Seconds float64 `json:"seconds"`
	// Notes are measurements (load rows, F1 trials).
	Notes []string `json:"notes,omitempty"`
}

// Report is the suite's answer.
type Report struct {
	Rows []RowResult `json:"rows"`
	// Total counts the rows of each outcome, every outcome present (0
	// included), so that a script can read total.FAIL.
	Total map[Outcome]int `json:"total"`
	// Error is why the suite stopped before its end (a lab that would not
	// come up, an interruption); the rows before it are kept.
	Error string `json:"error,omitempty"`
	// Exit is set, to 2, for a usage error, as other commands' JSON
	// failures have it; the suite's own exit status is otherwise the
	// process's (1 with a FAIL row).
	Exit int `json:"exit,omitempty"`
}

// NewReport is a report of no rows, with every outcome counted 0.
func NewReport() Report { return Report{Total: map[Outcome]int{Pass: 0, Fail: 0, Skip: 0}} }

// Failed says whether any row failed.
func (r Report) Failed() bool { return r.Total[Fail] > 0 }

// skipError marks a row that cannot be staged on this machine.
type skipError struct{ reason string }

func (s skipError) Error() string { return s.reason }

func skip(format string, a ...any) error { return skipError{fmt.Sprintf(format, a...)} }

// Form is how many times the repeated rows repeat.
type Form int

const (
	// Short is go test's (make test): F1 kills the receive 20 times, L1
	// runs 20 updates.
	Short Form = iota
	// Default is make attack's: F1 20 kills, L1 the 200 updates.
	Default
	// Long is --long's: F1 100 kills, L1 200 updates.
	Long
)

// Options says what to run and where.
type Options struct {
	// Dir holds one lab directory per group (DIR/GROUP), made afresh.
	Dir string
	// BinDir holds the project's programs (default: lab.Options' default).
	BinDir string
	// Only selects rows by id (S1) or by the letter of their table (S);
	// empty: every row.
	Only []string
	// Long runs the long form (F1's 100 kills), else the default one.
	Long bool
	// Progress receives a line per row as it ends (nil: none).
	Progress io.Writer
}

// Selected says whether the row is among only (empty: all).
func Selected(id string, only []string) bool {
	if len(only) == 0 {
		return true
	}
	return slices.ContainsFunc(only, func(o string) bool {
		return strings.EqualFold(o, id) || strings.EqualFold(o, strings.TrimRight(id, "0123456789"))
	})
}

// Run runs the selected rows, one lab per group, and reports every row.
// The error is for the suite itself failing (e.g. a lab that does not come
// up); a row that fails is a FAIL in the report.
func Run(ctx context.Context, opts Options) (Report, error) {
	rep := NewReport()
	rows := Rows()
	for _, id := range opts.Only {
		if !slices.ContainsFunc(rows, func(r Row) bool { return Selected(r.ID, []string{id}) }) {
			return rep, fmt.Errorf("--only %s: no such row", id)
		}
	}
	for _, group := range groups {
		var selected []Row
		for _, r := range rows {
			if r.Group == group && Selected(r.ID, opts.Only) {
				selected = append(selected, r)
			}
		}
		if len(selected) == 0 {
			continue
		}
		results, err := runGroup(ctx, opts, group, selected)
		for _, res := range results {
			rep.add(res, opts.Progress)
		}
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (r *Report) add(res RowResult, progress io.Writer) {
	r.Rows = append(r.Rows, res)
	r.Total[res.Outcome]++
	if progress != nil {
		fmt.Fprintf(progress, "%-4s %s  %s (%.0fs)\n", res.ID, res.Outcome, res.Reason, res.Seconds)
	}
}

// runGroup brings a fresh lab up in DIR/GROUP, runs the rows in it and
// brings it down (the directory stays, with its logs, until the next run).
func runGroup(ctx context.Context, opts Options, group string, rows []Row) ([]RowResult, error) {
	form := Default
	if opts.Long {
		form = Long
	}
	e, err := StartLab(ctx, filepath.Join(opts.Dir, group), opts.BinDir, form)
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", group, err)
	}
	defer e.Lab.Down()
	var results []RowResult
	for _, r := range rows {
		results = append(results, e.RunRow(r))
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, e.Lab.Down()
}

// StartLab brings a fresh lab up in dir (removing what an earlier run left
// there) for a group of rows; Lab.Down stops it.
func StartLab(ctx context.Context, dir, binDir string, form Form) (*Env, error) {
	if err := removeLab(dir); err != nil {
		return nil, err
	}
	l, err := lab.Up(ctx, lab.Options{Dir: dir, BinDir: binDir})
	if err != nil {
		return nil, fmt.Errorf("lab up: %w", err)
	}
	e, err := newEnv(ctx, l, form)
	if err != nil {
		l.Down()
		return nil, err
	}
	return e, nil
}

// removeLab stops a lab left in dir by an earlier run and removes it.
func removeLab(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "lab.json")); err == nil {
		if err := lab.Down(dir); err != nil {
			return fmt.Errorf("stopping the lab left in %s: %w", dir, err)
		}
	}
	return os.RemoveAll(dir)
}

// RunRow runs one row in this lab: the attack, then the checks every row
// shares (no process left in dom0, the staging directory empty), then
// puts the attacker's programs and dom0's configuration back.
func (e *Env) RunRow(r Row) RowResult {
	start := time.Now()
	e.notes = nil
	res := RowResult{ID: r.ID, Attack: r.Attack}
	reason, err := e.runChecked(r)
	if rerr := e.reset(); err == nil && rerr != nil {
		err = fmt.Errorf("restoring the lab after the row: %w", rerr)
	}
	var s skipError
	switch {
	case errors.As(err, &s):
		res.Outcome, res.Reason = Skip, s.reason
	case err != nil:
		res.Outcome, res.Reason = Fail, oneLine(err.Error())
	default:
		res.Outcome, res.Reason = Pass, reason
	}
	res.Seconds = time.Since(start).Seconds()
	res.Notes = e.notes
	return res
}

func (e *Env) runChecked(r Row) (string, error) {
	if err := e.reset(); err != nil {
		return "", err
	}
	e.tmpAtStart, _ = filepath.Glob(e.dom0Path("tmp/*"))
	reason, err := r.run(e)
	if err != nil {
		return reason, err
	}
	left, err := e.leftInDom0()
	if err != nil {
		return reason, err
	}
	if len(left) > 0 {
		return reason, fmt.Errorf("processes left running in dom0: %s", strings.Join(left, "; "))
	}
	if staged := e.stagingLeft(); len(staged) > 0 {
		return reason, fmt.Errorf("the staging directory still holds %v", staged)
	}
	return reason, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Print writes the report as a table with totals.
func (r Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%-4s  %-4s  %5s  %s\n", "id", "", "secs", "attack — outcome")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "%-4s  %-4s  %5.1f  %s\n", row.ID, row.Outcome, row.Seconds, row.Attack)
		fmt.Fprintf(w, "%17s%s\n", "→ ", row.Reason)
		for _, n := range row.Notes {
			fmt.Fprintf(w, "%17s%s\n", "· ", n)
		}
	}
	fmt.Fprintf(w, "total: %d rows, %d PASS, %d FAIL, %d SKIP\n", len(r.Rows), r.Total[Pass], r.Total[Fail], r.Total[Skip])
}

// WriteJSON writes the report for programs.
func (r Report) WriteJSON(w io.Writer) error {
	if r.Rows == nil {
		r.Rows = []RowResult{} // [], not null: scripts iterate over it
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
