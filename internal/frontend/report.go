package frontend

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/rpm"
)

// maxRejectedLines is how many rejected packages, and how many findings
// about packages, printResult names.
const maxRejectedLines = 50

// printResult tells a person what dom0 concluded about the delivery: every
// package with its verdict (the first maxRejectedLines of the rejected
// ones), every repository's freshness, every finding (the first
// maxRejectedLines of those about a package).
func printResult(w io.Writer, r dom0.Result) {
	if !r.Accepted && len(r.Packages) == 0 && len(r.Findings) == 0 && len(r.Freshness) == 0 {
		// Refused before any package or metadata was judged (the unpacker
		// refused the stream, the deadline passed): "checked: 0 files"
		// would read as an empty delivery, while the UpdateVM's transfer
		// counted files, and "before checking it" would belie the progress
		// line of the packages checked while they arrived.
		fmt.Fprintf(w, "==> dom0 refused the delivery from %s as a whole, before a verdict on each package\n", r.Caller)
		return
	}
	fmt.Fprintf(w, "==> dom0 checked the delivery from %s: %d file(s), %d bytes\n", r.Caller, len(r.Packages), r.Bytes)
	rejected := 0
	for _, p := range r.Packages {
		if !p.OK {
			// An UpdateVM chooses how many files it sends: a screenful of
			// refusals says enough; the rest are in the log and the JSON.
			if rejected++; rejected > maxRejectedLines {
				continue
			}
		}
		if p.OK {
			fmt.Fprintf(w, "    verified: %s (signed by %s)\n", p.NEVRA, p.Signer)
		} else if p.Kind == rpm.KindVerifiersDisagree.String() {
			// verify.md §1: a disagreement is a security error (a bug in
			// one of the verifiers, or a package made to exploit one).
			fmt.Fprintf(w, "    rejected: %s: SECURITY ERROR, the two verifiers disagree: %s\n", p.File, p.Rejected)
		} else if p.Kind != "" {
			// The class first (operations.md, "Package rejections"): the
			// reason alone may not name it.
			fmt.Fprintf(w, "    rejected: %s: %s: %s\n", p.File, p.Kind, p.Rejected)
		} else {
			fmt.Fprintf(w, "    rejected: %s: %s\n", p.File, p.Rejected)
		}
	}
	sayOmitted(w, rejected, "rejected")
	for _, f := range r.Freshness {
		line := fmt.Sprintf("    freshness: repo %s: %s", f.Repo, f.Status)
		if f.Revision != 0 {
			line += fmt.Sprintf(", revision %d", f.Revision)
		}
		if !f.Time.IsZero() {
			// Against dom0's time floor, as the freeze check judged it: dom0's
			// clock may have been set back (verify.md §2.4).
			line += ", " + repometa.HumanAge(time.Duration(f.AgeSeconds)*time.Second) + " old"
		}
		if f.Key != "" {
			line += ", verified by key " + f.Key
		}
		fmt.Fprintln(w, line)
	}
	packageFindings := 0
	for _, f := range r.Findings {
		// The same cap as for rejected packages: an UpdateVM can send many
		// signed packages that each earn a finding (old builds, extraneous).
		if f.Package != "" {
			if packageFindings++; packageFindings > maxRejectedLines {
				continue
			}
		}
		level, detail := findingLevel(f)
		if f.Kind == string(repometa.NotVerifiable) && f.Package == "" && f.Repo != "" && !f.Error {
			// dom0 accepts such a repository on the package signatures alone
			// (verify.md §2), and a person must know what that leaves open.
			detail += fmt.Sprintf(": freeze, rollback and withheld updates from it go undetected (M1–M9); pin its metadata key in %s (repo.%s.metadata_key)", dom0.ConfigPath, f.Repo)
		}
		fmt.Fprintf(w, "    %s: %s\n", level, detail)
	}
	sayOmitted(w, packageFindings, "findings about packages")
	// The reason for refusing the whole delivery: not a package, so not a
	// "rejected:" line (those are FILE: REASON, operations.md).
	if r.Error != "" {
		fmt.Fprintf(w, "    error: dom0 refused the delivery: %s\n", r.Error)
	}
}

// sayOmitted says how many of counted lines of what printResult left out
// past maxRejectedLines, if any.
func sayOmitted(w io.Writer, counted int, what string) {
	if counted > maxRejectedLines {
		fmt.Fprintf(w, "    … and %d more %s (--json and %s list every one)\n", counted-maxRejectedLines, what, dom0.LogPath)
	}
}

// writeJSON writes v as one JSON object in ASCII (cmdline.WriteJSON),
// and one saying so if v cannot be encoded: our own types, so not
// expected, but stdout must still hold one JSON object.
func writeJSON(w io.Writer, v any) {
	if err := cmdline.WriteJSON(w, v); err != nil {
		io.WriteString(w, `{"error": "the report could not be encoded"}`+"\n")
	}
}

// findingLevel is a finding's severity, which its message begins with
// (repometa.Finding.String), and the message without it: verify.md
// ("Results") prints findings as "rejected: …", "warning: …", "notice: …".
// A finding that refused the batch is "rejected" whatever its message says.
func findingLevel(f dom0.Finding) (level, detail string) {
	level, detail = string(repometa.Warning), f.Message
	for _, s := range []repometa.Severity{repometa.Notice, repometa.Warning, repometa.Reject} {
		if rest, ok := strings.CutPrefix(f.Message, string(s)+": "); ok {
			level, detail = string(s), rest
			break
		}
	}
	if f.Error {
		level = string(repometa.Reject)
	}
	return level, detail
}

// refusalCause names in a few words what made dom0 refuse the delivery r:
// the first rejected package's class and file, else the first rejecting
// finding's kind and repository (or package); "" when neither is there (a
// batch-level error such as a bad keyring). A downgrade comes first among
// the findings: an older build beside it is most likely the same
// resolution's doing (a package asked for needs older versions, M8), not a
// replay.
func refusalCause(r dom0.Result) (cause, advice string) {
	for _, p := range r.Packages {
		if !p.OK {
			return cmp.Or(p.Kind, "rejected") + ": " + p.File, ""
		}
	}
	for _, downgrades := range []bool{true, false} {
		for _, f := range r.Findings {
			switch {
			case !f.Error || downgrades && f.Kind != string(repometa.Downgrade):
			case f.Repo != "":
				return f.Kind + ", repo " + f.Repo, findingAdvice[f.Kind]
			case f.Package != "":
				return f.Kind + ", package " + f.Package, findingAdvice[f.Kind]
			default:
				return f.Kind, findingAdvice[f.Kind]
			}
		}
	}
	return "", ""
}

// findingAdvice is what to do about a refusing finding, in brief
// (freshness.md, "Findings and what to do about them", has the whole of it).
var findingAdvice = map[string]string{
	string(repometa.MissingMetadata): "the UpdateVM did not send the signed metadata: if its dnf skipped the repository (its mirror down, skip_if_unavailable), bring the mirror back or leave the repository out with --disablerepo=ID; otherwise check the UpdateVM, then run again with --clean",
	string(repometa.WrongKey):        "if the publisher really changed its metadata key, check the new key out of band and pin it in updates.conf (named the old key since: run with --clean, the UpdateVM's dnf kept an old signature); otherwise treat the UpdateVM or its mirror as hostile",
	string(repometa.BadSignature):    "the metadata was altered, or its key is no longer valid: do not override; check the mirror and the pinned key",
	string(repometa.BadMetadata):     "run again with --clean; if it persists and the detail names a checksum type other than sha256, the publisher's metadata uses one dom0 does not verify (a pinned repository needs createrepo_c --checksum=sha256); otherwise the UpdateVM is tampering",
	string(repometa.Rollback):        "the UpdateVM or its mirror serves an older snapshot than dom0 accepted before: switch mirrors, inspect the UpdateVM",
	string(repometa.Stale):           "the metadata is older than max_metadata_age: a mirror that stopped syncing, or a freeze attack; switch mirrors",
	string(repometa.NotInMetadata):   "a replay or a mix of snapshots: run again with --clean",
	string(repometa.OlderBuild):      "a replay of an older build, or the newest cannot be installed (a dependency missing: the UpdateVM's dnf then says \"Skipping packages with broken dependencies\" above and takes the older one): for a replay run again with --clean; to install that version on purpose, name it (NAME-VERSION) and the versions of the packages it pins to its own (a -libs subpackage), or use --action=downgrade --allow-downgrade; to update the rest, --exclude=NAME",
	string(repometa.Extraneous):      "the UpdateVM added packages nobody asked for: inspect it",
	string(repometa.WrongSoftware):   "the UpdateVM delivered other software under a listed digest: inspect it",
	string(repometa.Withheld):        "run again; if dnf in the UpdateVM skips that update for a reason (broken dependencies), exclude it explicitly (--exclude=NAME); where the finding names a better-priority repository without signed metadata, pin its metadata key or give both the same priority",
	string(repometa.Downgrade):       "the UpdateVM's dnf chose a build older than the installed one, most often because a package asked for needs that older version: if that is really what you want, name the older versions with --action=downgrade --allow-downgrade; otherwise leave out the package that needs them",
	string(repometa.OtherArch):       "dnf prefers this machine's builds: run again with --clean; to install the other architecture on purpose (a 32-bit dependency among them), name it with its arch (NAME.ARCH)",
	string(repometa.BadRequest):      "fix the command line",
}
