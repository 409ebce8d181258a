package frontend

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/repometa"
)

// printResult tells a person what dom0 concluded about the delivery: every
// package with its verdict, every repository's freshness, every finding.
func printResult(w io.Writer, r dom0.Result) {
	fmt.Fprintf(w, "==> dom0 checked the delivery from %s: %d file(s), %d bytes\n", r.Caller, len(r.Packages), r.Bytes)
	for _, p := range r.Packages {
		if p.OK {
			fmt.Fprintf(w, "    verified: %s (signed by %s)\n", p.NEVRA, p.Signer)
		} else {
			fmt.Fprintf(w, "    rejected: %s: %s\n", p.File, p.Rejected)
		}
	}
	for _, f := range r.Freshness {
		line := fmt.Sprintf("    freshness: repo %s: %s", f.Repo, f.Status)
		if f.Revision != "" {
			line += fmt.Sprintf(", revision %s", f.Revision)
		}
		if !f.Time.IsZero() {
			line += fmt.Sprintf(", %s old", r.Finished.Sub(f.Time).Round(time.Minute))
		}
		if f.Key != "" {
			line += ", verified by key " + f.Key
		}
		if f.Detail != "" {
			line += " (" + f.Detail + ")"
		}
		fmt.Fprintln(w, line)
	}
	for _, f := range r.Findings {
		level, detail := findingLevel(f)
		fmt.Fprintf(w, "    %s: %s\n", level, detail)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "    rejected: %s\n", r.Error)
	}
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// findingLevel is "error" for a finding that refused the batch, else its
// severity, and the finding's message without the severity it begins with
// (repometa.Finding.String).
func findingLevel(f dom0.Finding) (level, detail string) {
	level, detail = "warning", f.Message
	for _, s := range []repometa.Severity{repometa.Notice, repometa.Warning, repometa.Reject} {
		if rest, ok := strings.CutPrefix(f.Message, string(s)+": "); ok {
			detail = rest
			if s == repometa.Notice {
				level = string(s)
			}
			break
		}
	}
	if f.Error {
		level = "error"
	}
	return level, detail
}
