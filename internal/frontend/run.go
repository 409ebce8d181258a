package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/sandbox"
	"pedos.dev/updates/internal/updatecall"
)

// Exit codes (overview.md).
const (
	ExitOK               = 0
	ExitFailure          = 1
	ExitUsage            = 2
	ExitUpdatesAvailable = 100
	ExitQrexecFailure    = 125
	ExitRefused          = 126
)

// Caller runs a command in another domain (qrexec-client in dom0).
type Caller interface {
	Run(ctx context.Context, domain string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// Tools runs dom0's package tools (internal/pkgtool, internal/dnftool).
type Tools interface {
	ExportRPMDB(root string, w io.Writer) error
	DNF(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	CreateRepo(ctx context.Context, dir string) error
	InstalledPackages(ctx context.Context, root string) ([]repometa.NEVRA, error)
	WhatProvides(ctx context.Context, root, capability string) ([]string, error)
}

// Env is everything Run touches outside this process.
type Env struct {
	Config dom0.Config
	VM     Caller
	Tools  Tools
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// DownloadCommand is the UpdateVM's program (overview.md step 3).
	DownloadCommand string
}

// Report is the final answer of one run, printed with --json.
type Report struct {
	Action string `json:"action"` // "" after a usage error that came before it was known
	// Packages, Excludes and the modes are what was asked for, so that the
	// update log says it: a --check-only that found nothing is not an
	// upgrade with nothing to do.
	Packages     []string `json:"packages,omitempty"`
	Excludes     []string `json:"exclude,omitempty"`
	CheckOnly    bool     `json:"check_only,omitempty"`
	DownloadOnly bool     `json:"download_only,omitempty"`
	Clean        bool     `json:"clean,omitempty"`
	UpdateVM     string   `json:"updatevm"`
	Session      string   `json:"session,omitempty"`
	Exit         int      `json:"exit"`
	Message      string   `json:"message,omitempty"`
	// UpdateVMStderr is the last lines (at most maxReportedVMLines) the
	// UpdateVM's command wrote to stderr, when it failed or delivered
	// nothing: its own word, unverified, escaped as on the terminal; for
	// scripts, which the message alone would not tell why.
	UpdateVMStderr []string     `json:"updatevm_stderr,omitempty"`
	Result         *dom0.Result `json:"result,omitempty"`
	// ResultPackageCount replaces Result's packages in the update log.
	ResultPackageCount int  `json:"result_package_count,omitempty"`
	DNFExit            *int `json:"dnf_exit,omitempty"`
	// Installed and Removed are the NEVRAs dnf's transaction in dom0 added
	// to and took from the rpm database (an upgrade is both), from rpm -qa
	// before and after it.
	Installed []string `json:"installed,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	// Reinstalled, for --action=reinstall that dnf ended with 0, are the
	// delivered packages installed before and after it: rpm -qa does not
	// tell a reinstall from nothing.
	Reinstalled []string `json:"reinstalled,omitempty"`
	// Available is what --check-only found, the UpdateVM's word alone;
	// the update log records only how many (AvailableCount).
	Available      []AvailableUpdate `json:"available,omitzero"`
	AvailableCount int               `json:"available_count,omitempty"`
}

// NewReport is the report of a run of o, before it ends.
func NewReport(o Options, updateVM string) Report {
	return Report{
		Action: o.Action, Packages: o.Packages, Excludes: o.Excludes,
		CheckOnly: o.CheckOnly, DownloadOnly: o.DownloadOnly, Clean: o.Clean,
		UpdateVM: updateVM,
	}
}

type runner struct {
	o   Options
	env Env
	rep Report
	// vmTail is the end of the UpdateVM's stderr in the last vmRun.
	vmTail []string
	// bar, during the download on a terminal, holds dom0's verification
	// bar and, under it, the one the UpdateVM's progress lines draw.
	bar *statusLine
	// policyRule is the rule of dom0's qrexec policy that allowed the
	// UpdateVM's call before the download ("" where ours does not decide).
	policyRule string
}

// maxReportedVMLines is how much of the UpdateVM's stderr the report keeps;
// maxLoggedVMStderrBytes how much of that the update log keeps (encoded).
const (
	maxReportedVMLines     = 10
	maxLoggedVMStderrBytes = 2048
)

// lastFitting is the last of lines whose JSON encodings, together, take at
// most limit bytes.
func lastFitting(lines []string, limit int) []string {
	i := len(lines)
	for size := 0; i > 0; i-- {
		encoded, _ := json.Marshal(lines[i-1])
		if size += len(encoded); size > limit {
			break
		}
	}
	if i == len(lines) {
		return nil
	}
	return lines[i:]
}

// Run carries out one pedos-dom0-update and returns its exit code.
func Run(ctx context.Context, o Options, env Env) int {
	r := &runner{o: o, env: env, rep: NewReport(o, env.Config.UpdateVM)}
	code, err := r.run(ctx)
	r.rep.Exit = code
	return Conclude(env.Config, o, r.rep, err, env.Stdout, env.Stderr)
}

// Conclude ends every run, a usage error too, and returns rep.Exit: err's
// message on stderr, a record in dom0's update log (overview.md: every run
// appends one), and with --json the report as the one JSON object on
// stdout.
func Conclude(c dom0.Config, o Options, rep Report, err error, stdout, stderr io.Writer) int {
	if err != nil {
		rep.Message = err.Error()
		fmt.Fprintf(stderr, "pedos-dom0-update: %s\n", oneLine(rep.Message))
	}
	if lerr := appendLog(c, o, rep); lerr != nil {
		warnf(stderr, "this run is not in the update log: %v", lerr)
	}
	if o.JSON {
		writeJSON(stdout, rep)
	}
	return rep.Exit
}

// appendLog writes rep to the update log below c.Root, but never makes the
// root itself: a --root that does not exist is a mistake, and one record
// must not leave a tree there. Nor is a record written when --root came
// without a value: the default root is not the one the user meant.
func appendLog(c dom0.Config, o Options, rep Report) error {
	if o.RootMissing {
		return errors.New("--root was given without an absolute directory")
	}
	if c.Root != "" {
		if _, err := os.Stat(c.Root); err != nil {
			return fmt.Errorf("--root %s: %w", c.Root, err)
		}
	}
	// The list --check-only reports is the UpdateVM's word, up to
	// megabytes of it: the log keeps its length only, so that an UpdateVM
	// cannot grow dom0's log by that much at every scheduled check.
	if rep.Available != nil {
		rep.AvailableCount, rep.Available = len(rep.Available), nil
	}
	// Likewise the UpdateVM's last words: the log keeps the last of them
	// that fit in maxLoggedVMStderrBytes as JSON writes them.
	rep.UpdateVMStderr = lastFitting(rep.UpdateVMStderr, maxLoggedVMStderrBytes)
	// The service's "delivery" record of the same session lists every
	// package; this one keeps their number, so that a refused delivery of
	// thousands of files does not grow the log twice.
	if rep.Result != nil && rep.Result.Packages != nil {
		result := *rep.Result
		rep.ResultPackageCount, result.Packages = len(result.Packages), nil
		rep.Result = &result
	}
	return dom0.AppendLog(c, dom0.LogRecord{Program: "pedos-dom0-update", Session: rep.Session, Event: "finished", Detail: rep})
}

// say tells the person what the run does next; what it names (a path
// below --root) is shown as oneLine shows it.
func (r *runner) say(format string, a ...any) {
	fmt.Fprintf(r.env.Stderr, "==> %s\n", oneLine(fmt.Sprintf(format, a...)))
}

// warnf writes a warning of dom0's own to w, shown as oneLine shows it.
func warnf(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "pedos-dom0-update: warning: %s\n", oneLine(fmt.Sprintf(format, a...)))
}

func (r *runner) run(ctx context.Context) (int, error) {
	delivers := !r.o.CheckOnly && !r.o.IsQuery() && r.o.Action != "remove"
	if r.o.ReleaseVer != "" && r.o.ReleaseVer != r.env.Config.ReleaseVer && delivers {
		// dom0's freshness state is kept per repository id, whatever the
		// release: what this run accepts is the mark later runs are held to.
		warnf(r.env.Stderr, "--releasever=%s differs from releasever in %s (%q): the metadata this run accepts becomes each repository's high-water mark, so a later run at the other release is refused as a rollback; set releasever = %s there once the upgrade is done", r.o.ReleaseVer, dom0.ConfigPath, r.env.Config.ReleaseVer, r.o.ReleaseVer)
	}
	if r.o.ReleaseVer != "" {
		r.env.Config.ReleaseVer = r.o.ReleaseVer // sent with the sync, given to dom0's dnf
	}
	c := r.env.Config
	// Before anything is written: rpm and dnf make an empty database where
	// they find none, so a mistyped installroot (or --root) would be sent to
	// the UpdateVM as a system with nothing installed, and "no updates"
	// would be the answer.
	if err := pkgtool.RequireRPMDB(c.InstallRootPath()); err != nil {
		return ExitFailure, fmt.Errorf("dom0's installroot: %w (check installroot in %s and --root)", err, dom0.ConfigPath)
	}
	unlock, err := Lock(c)
	if err != nil {
		return ExitFailure, err
	}
	defer unlock()
	if r.o.Action == "remove" {
		return r.dnf(ctx, "")
	}
	if err := checkNetworkRepos(c, r.o.RepoSwitches); err != nil {
		return ExitFailure, err
	}
	if delivers {
		if err := checkReceiveSettings(c); err != nil {
			return ExitFailure, err
		}
		warnExpiredPins(c, r.env.Stderr)
		rule, code, err := checkDeliveryPolicy(c)
		if err != nil {
			return code, err
		}
		r.policyRule = rule
		unlock, err := lockReceive(c, "nothing was sent")
		if err != nil {
			return ExitFailure, err
		}
		unlock() // only a probe: the service this run's delivery starts takes it
	}
	if r.o.Clean {
		unlock, err := lockReceive(c, "the cached repository was not emptied")
		if err != nil {
			return ExitFailure, err
		}
		r.say("Emptying the cached repository %s", c.Path(dom0.CachedRepoDir))
		err = cleanCachedRepo(ctx, c, r.env.Tools, r.env.Stderr)
		unlock()
		if err != nil {
			return ExitFailure, err
		}
	}
	r.say("Sending dom0's package database and repository configuration to %s", c.UpdateVM)
	if code, err := r.sync(ctx); err != nil {
		return code, err
	}
	switch {
	case r.o.CheckOnly:
		return r.checkOnly(ctx)
	case r.o.IsQuery() && r.o.JSON:
		// stdout carries the JSON report alone.
		return r.callVM(ctx, r.vmArgs(""), r.env.Stderr, query)
	case r.o.IsQuery():
		return r.callVM(ctx, r.vmArgs(""), r.env.Stdout, query)
	}
	named, err := r.namedInstalled(ctx)
	if err != nil {
		return ExitFailure, err
	}
	s, release, err := NewSession(c, dom0.Session{Action: r.o.Action, Packages: named,
		Excludes: r.o.Excludes, AllowDowngrade: r.o.AllowDowngrade}, r.o.RepoSwitches, r.env.Stderr)
	if err != nil {
		return ExitFailure, fmt.Errorf("starting the update session: %w", err)
	}
	defer release()
	r.rep.Session = s.ID
	r.say("Asking %s to resolve and download (%s)", c.UpdateVM, r.o.Action)
	finished := make(chan dom0.Progress, 1)
	watched := make(chan struct{})
	// On a terminal, the UpdateVM's lines are written above the bars,
	// never into them.
	stderr := r.env.Stderr
	// TERM=dumb: a terminal that acts on no escape sequence gets lines.
	if terminal, ok := stderr.(*os.File); ok && cmdline.IsTerminal(terminal) && os.Getenv("TERM") != "dumb" {
		r.bar = newStatusLine(terminal)
		r.env.Stderr = r.bar
	}
	go func() { watchProgress(c, s.ID, stderr, r.bar, finished); close(watched) }()
	vmCode, vmErr := r.callVM(ctx, r.vmArgs(s.ID), r.env.Stderr, download)
	res, err := AwaitResult(ctx, c, s)
	finished <- dom0.Progress{Session: s.ID, Done: len(res.Packages), Total: len(res.Packages)}
	<-watched
	r.env.Stderr, r.bar = stderr, nil
	if errors.Is(err, ErrNoResult) {
		// Past the session's deadline, a delivery is refused and dom0's
		// call ended: the cause is then the time receive_timeout allows,
		// not the policy nor another delivery. Any other failure (dnf's,
		// the UpdateVM's qrexec) is its own, whenever it came.
		late := time.Now().After(s.Deadline) && (vmCode == ExitRefused || errors.Is(vmErr, ErrCallDeadline))
		switch {
		case errors.Is(vmErr, ErrCallFailed):
			// dom0's own call to the UpdateVM failed, in its client's words.
			return vmCode, vmErr
		case late:
			what := "dom0's receive service refused the late delivery"
			if vmErr != nil {
				what = "dom0 ended its call there, the download still running"
			}
			return vmCode, fmt.Errorf("%s did not deliver before the session's deadline (%s: receive_timeout %s in %s after the session started): %s; nothing was installed. For a slow mirror or a large update, raise receive_timeout", c.UpdateVM, s.Deadline.Format(time.RFC3339), c.ReceiveTimeout, dom0.ConfigPath, what)
		case vmCode == ExitRefused:
			// The UpdateVM's command passes on qrexec-client-vm's 126; dom0's
			// own call just reached the UpdateVM (sync), so this is the
			// UpdateVM's call to dom0, refused by the policy or by the
			// service before it read a byte (dom0.ErrRefused): only dom0's
			// qrexec log tells which, unless our policy allowed the call
			// before the download.
			refusedBy := fmt.Sprintf("either dom0's qrexec policy does not let %s call PedOS.ReceiveUpdates, or pedos-receive-updates refused the call", c.UpdateVM)
			if r.policyRule != "" {
				refusedBy = fmt.Sprintf("dom0's qrexec policy lets %s call PedOS.ReceiveUpdates (%s, checked before the download), so pedos-receive-updates refused the call", c.UpdateVM, r.policyRule)
			}
			return ExitRefused, fmt.Errorf("dom0 refused the delivery from %s (126) before reading it: %s (another delivery still running, a session id other than this run's, or no session waiting for it); dom0's qrexec log says which. If it shows no call from %s at all, the 126 is the UpdateVM's own word (its qrexec-client-vm refused the call before sending it, or its command said 126)", c.UpdateVM, refusedBy, c.UpdateVM)
		case vmErr != nil:
			return vmCode, vmErr
		}
		r.rep.UpdateVMStderr = r.vmTail
		return ExitFailure, fmt.Errorf("%s finished (exit %d) but delivered nothing to dom0", c.UpdateVM, vmCode)
	}
	if err != nil {
		return ExitFailure, err
	}
	r.rep.Result = &res
	// dom0 wrote the result, but parts of its messages may quote what the
	// UpdateVM sent.
	shown := newUntrustedText(r.env.Stderr, "")
	printResult(shown, res)
	_ = shown.Flush()
	if !res.Accepted {
		return ExitFailure, refusal(c.UpdateVM, res, r.o.Clean)
	}
	if vmErr != nil {
		// An honest UpdateVM ends well after dom0 accepted what it sent.
		return ExitFailure, fmt.Errorf("dom0 accepted the delivery, but then %v: not installing; the verified packages stay in the cached repository, so run again", vmErr)
	}
	plainUpgrade := r.o.Action == "upgrade" && len(r.o.Packages) == 0
	if r.o.DownloadOnly {
		if len(res.Packages) == 0 && !plainUpgrade {
			// No dnf runs to tell "already installed" from "held back" (M1).
			warnf(r.env.Stderr, "%s delivered no packages for this %s: unless they are installed already, it held them back (M1); run without --downloadonly to have dnf check", c.UpdateVM, r.o.Action)
		}
		r.say("Verified packages are in %s (--downloadonly: not installing)", c.Path(dom0.CachedRepoDir))
		return ExitOK, nil
	}
	if len(res.Packages) == 0 && plainUpgrade {
		// dom0's withholding check (verify.md §2.6) judged "no update" for
		// every installed package: the UpdateVM's word alone is not taken.
		if slices.ContainsFunc(res.Findings, func(f dom0.Finding) bool { return f.Kind == string(repometa.Stale) }) {
			// require_fresh is off, or this would be a refusal (M9).
			r.say("No updates for dom0 in metadata older than max_metadata_age (see the warning above): updates published since may be held back; nothing to do")
			return ExitOK, nil
		}
		r.say("No updates for dom0: nothing to do")
		return ExitOK, nil
	}
	// Packages were named (or the action is not a plain upgrade): only dnf
	// in dom0 knows whether the request is met without a delivery (hello is
	// already installed) or was held back (M1): it then finds no match in
	// the cached repository and fails, where skipping it would report an
	// install that never happened as done.
	if len(res.Packages) == 0 {
		return r.dnf(ctx, fmt.Sprintf("%s delivered no packages for this %s: where dnf found no match above, no enabled repository has the package, or %s held it back (M1), or, where %s's dnf said \"Nothing to do\", the request may be met already (a pattern matching only installed packages, upgrade-to an older version, a downgrade of the lowest one): dom0 cannot tell these apart without a delivery; dom0 accepted the empty delivery, so its cached repository is now empty", c.UpdateVM, r.o.Action, c.UpdateVM, c.UpdateVM))
	}
	return r.dnf(ctx, "the verified packages stay in the cached repository, so the next run can retry")
}

// namedInstalled is what the session names for dom0's checks: the
// packages as given and, for an upgrade, the installed packages that
// provide a name that names no installed package itself. dom0's
// withholding check (verify.md §2.6) matches names and versions only, so
// an upgrade named by a provide (or a file) would check no installed
// package, and an update the UpdateVM held back would go unseen. dnf takes
// a name as a provide only when no package has it (with hello installed,
// upgrade hello leaves a hello-compat that provides hello alone).
func (r *runner) namedInstalled(ctx context.Context) ([]string, error) {
	named := r.o.Packages
	if r.o.Action != "upgrade" || len(named) == 0 {
		return named, nil
	}
	root := r.env.Config.InstallRootPath()
	installed, err := r.env.Tools.InstalledPackages(ctx, root)
	if err != nil {
		return nil, err
	}
	for _, p := range r.o.Packages {
		if slices.ContainsFunc(installed, func(n repometa.NEVRA) bool { return repometa.Matches([]string{p}, n) }) {
			continue
		}
		providers, err := r.env.Tools.WhatProvides(ctx, root, p)
		if err != nil {
			return nil, err
		}
		named = append(slices.Clone(named), providers...)
	}
	return named, nil
}

// refusal is the error of a delivery dom0 refused, with the cause in brief
// and dom0's reason (the JSON report's message holds them too), escaped:
// they may quote what the UpdateVM sent. After --clean the cached
// repository stays as it left it: empty.
func refusal(vm string, res dom0.Result, cleaned bool) error {
	reason := ""
	cause, advice := refusalCause(res)
	if cause != "" {
		reason = " (" + cause + ")"
	}
	if res.Error != "" {
		reason += ": " + res.Error
	}
	if advice != "" {
		advice = ". What to do: " + advice
	}
	cache := "the cached repository is unchanged"
	if cleaned {
		cache = "the cached repository stays as --clean left it, empty"
	}
	return fmt.Errorf("dom0 refused the delivery from %s%s; nothing was installed and %s%s", vm, printable([]byte(reason)), cache, advice)
}

// sync ships dom0's database and configuration (overview.md step 2).
func (r *runner) sync(ctx context.Context) (int, error) {
	tarball, err := syncStream(r.env.Config, r.env.Tools.ExportRPMDB, r.env.Stderr)
	if err != nil {
		return ExitFailure, fmt.Errorf("preparing dom0's package database for %s: %w", r.env.Config.UpdateVM, err)
	}
	args := []string{r.env.DownloadCommand, "--sync"}
	if r.o.Clean {
		// Before the sync writes there: an UpdateVM whose disk its cache
		// filled could not take the sync, and --clean would never come.
		args = append(args, "--clean")
	}
	code, err := r.vmRun(ctx, args, tarball, io.Discard, false)
	return r.vmOutcome(code, err, "receiving dom0's configuration")
}

func (r *runner) checkOnly(ctx context.Context) (int, error) {
	args := []string{r.env.DownloadCommand, "--check-only"}
	if r.o.Clean {
		args = append(args, "--clean")
	}
	// Its stdout is a list for scripts (updatevm CheckUpdates); dnf's own
	// listing for a person is on its stderr.
	var listing cappedBuffer
	code, err := r.callVM(ctx, append(args, r.forwarded()...), &listing, "the check")
	switch {
	case code == ExitUpdatesAvailable:
		updates, malformed, cutShort := parseAvailable(listing.buf.Bytes())
		r.rep.Available = updates
		if malformed > 0 {
			warnf(r.env.Stderr, "%s's list of updates had %d line(s) that are not NAME EPOCH VERSION RELEASE ARCH REPO: left out", r.env.Config.UpdateVM, malformed)
		}
		if cutShort || listing.dropped {
			warnf(r.env.Stderr, "%s's list of updates is longer than %d lines or %d MiB: only the beginning is listed", r.env.Config.UpdateVM, maxAvailableLines, maxListingBytes>>20)
		}
		if len(updates) == 0 {
			// dnf said 100, and the list for scripts could not be made
			// (the UpdateVM warned why above): the answer stands.
			r.rep.Available = []AvailableUpdate{}
			r.say("Updates are available for dom0, as %s says; it listed none for scripts (see its lines above); its word alone until an upgrade has dom0 verify them", r.env.Config.UpdateVM)
			return ExitUpdatesAvailable, nil
		}
		r.say("Updates are available for dom0: %d package(s), as %s lists them (its word alone until an upgrade has dom0 verify them)", len(updates), r.env.Config.UpdateVM)
		return ExitUpdatesAvailable, nil
	case err == nil:
		// Only an upgrade's delivery reaches dom0's withholding check
		// (verify.md §2.6): this answer is the UpdateVM's word alone (M1).
		r.say("%s reports no updates for dom0 (not verified: --check-only sends nothing to dom0; run an upgrade to have the signed metadata checked)", r.env.Config.UpdateVM)
	}
	return code, err
}

// vmArgs is the UpdateVM's command line for a download (session != "") or
// a query.
func (r *runner) vmArgs(session string) []string {
	args := []string{r.env.DownloadCommand, "--action=" + r.o.Action}
	if session != "" {
		args = append(args, "--session="+session)
	}
	if r.o.Clean {
		args = append(args, "--clean")
	}
	args = append(args, r.forwarded()...)
	return append(append(args, "--"), r.o.Packages...)
}

// forwarded are the options the UpdateVM's dnf gets.
func (r *runner) forwarded() []string {
	var args []string
	for _, sw := range r.o.RepoSwitches {
		args = append(args, sw.Option())
	}
	return append(args, r.o.DNFOptions...)
}

// download and query name the UpdateVM's command that delivers to dom0
// and the one that answers a query, in messages and for vmOutcome.
const (
	download = "the download"
	query    = "the query"
)

// callVM runs argv in the UpdateVM; what names it in messages: the check,
// the query or the download.
func (r *runner) callVM(ctx context.Context, argv []string, stdout io.Writer, what string) (int, error) {
	code, err := r.vmRun(ctx, argv, nil, stdout, what == query)
	return r.vmOutcome(code, err, what)
}

// vmRun runs argv in the UpdateVM. Everything it prints is untrusted and
// reaches the person only through untrustedText, every line marked with the
// UpdateVM's name: its stderr goes to ours, and its stdout too when stdout
// is ours. A query's listing may be a repository's worth; anything else
// it prints is bounded by maxLogBytes.
func (r *runner) vmRun(ctx context.Context, argv []string, stdin io.Reader, stdout io.Writer, listing bool) (int, error) {
	prefix := r.env.Config.UpdateVM + ": "
	stderr := newUntrustedText(r.env.Stderr, prefix)
	stderr.limit, stderr.keepTail = maxLogBytes, maxReportedVMLines
	if r.bar != nil {
		// Its download's and transfer's progress as a bar; the lines
		// stay plain where there is no terminal (the progress).
		stderr.status = r.bar.updateVMProgress(r.env.Config.UpdateVM)
		defer r.bar.set(updateVMBar, nil)
	}
	switch stdout {
	case r.env.Stderr: // with --json, a query's listing shares stderr
		stdout = stderr
		if listing {
			stderr.limit = maxShownListingBytes
		}
	case r.env.Stdout: // a query's listing, bounded as with --json (red team)
		shown := newUntrustedText(stdout, prefix)
		shown.limit = maxShownListingBytes
		defer shown.End()
		stdout = shown
	}
	// Any other stdout is a buffer the caller parses, or io.Discard.
	code, err := r.env.VM.Run(ctx, r.env.Config.UpdateVM, argv, stdin, stdout, stderr)
	_ = stderr.End() // write errors on our own outputs cannot be reported
	r.vmTail = stderr.tail
	return code, err
}

// vmOutcome turns a qrexec call's exit into ours: qrexec failures and
// refusals pass through as 125 and 126 (overview.md). A failure's report
// keeps the end of what the UpdateVM said.
func (r *runner) vmOutcome(code int, err error, what string) (outCode int, outErr error) {
	defer func() {
		if outErr != nil {
			r.rep.UpdateVMStderr = r.vmTail
		}
	}()
	vm := r.env.Config.UpdateVM
	switch {
	case errors.Is(err, ErrInterrupted):
		return ExitFailure, fmt.Errorf("%s in %s: %w", what, vm, err)
	case errors.Is(err, ErrCallFailed) && code == ExitRefused:
		// dom0's own call refused by the domain's agent: passed through.
		return ExitRefused, fmt.Errorf("%s in %s: %w", what, vm, err)
	case err != nil:
		return ExitQrexecFailure, fmt.Errorf("%s in %s: %w", what, vm, err)
	case code == ExitQrexecFailure && what == download:
		// dom0's own call reached the UpdateVM (the sync before it), and
		// the download passes on the 125 of its qrexec-client-vm, whose
		// message is above.
		return code, fmt.Errorf("%s in %s: %s could not reach dom0's %s (qrexec in %s failed, exit 125; see its message above and the qrexec daemon's journal)", what, vm, vm, updatecall.ReceiveService, vm)
	case code == ExitQrexecFailure:
		return code, fmt.Errorf("%s in %s: dom0's qrexec call to %s failed (exit 125: is %s running, and its qrexec agent reachable?)", what, vm, vm, vm)
	case code == ExitRefused:
		return code, fmt.Errorf("%s in %s: refused (exit 126): by the qrexec policy of a PedOS/Qubes host, or %s could not run the command", what, vm, vm)
	case code == 127:
		// The shell's "command not found", running dom0's command line.
		return ExitFailure, fmt.Errorf("%s in %s failed (exit 127): %s is not installed there (the shell found no such command)", what, vm, r.env.DownloadCommand)
	case code > 128 && code <= 128+64:
		// The shell's 128+N for a command that signal N ended.
		return ExitFailure, fmt.Errorf("%s in %s failed: its command was killed by signal %d (exit %d)", what, vm, code-128, code)
	case code != 0 && !(code == ExitUpdatesAvailable && what == "the check"):
		// 100 means "updates available" from the check only. Why is in
		// the UpdateVM's lines (dnf's error last), which dom0 cannot vouch
		// for, so they are not quoted here.
		return ExitFailure, fmt.Errorf("%s in %s failed (exit %d): %s's lines above say why (with --json, its updatevm_stderr)", what, vm, code, vm)
	}
	return code, nil
}

// cachedRepoIDs are the repositories enabled in dom0's cached-repository
// configuration: the only ones dom0's own dnf may use.
func cachedRepoIDs(c dom0.Config) ([]string, error) {
	files, err := dnfconf.RepoFiles(c.Path(dom0.CachedRepoConfDir))
	if err != nil {
		return nil, err
	}
	enabled := map[string]bool{}
	for _, file := range files {
		// dom0's dnf would skip a file it cannot parse: say why it has no
		// repository rather than only that it has none.
		skipped, err := dnfconf.ReadRepoFile(file, false, enabled, dnfconf.RepoLists{})
		if err == nil && len(skipped) > 0 {
			err = errors.New(strings.Join(skipped, "; "))
		}
		if err != nil {
			return nil, err
		}
	}
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(enabled)) {
		if enabled[id] {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no repository is enabled in %s", c.Path(dom0.CachedRepoConfDir))
	}
	return ids, nil
}

// dnf runs dnf in dom0 with the cached repository as its only repository
// (overview.md step 7); ifFailed says what a failure means for the cached
// repository ("" for remove, which does not read it).
func (r *runner) dnf(ctx context.Context, ifFailed string) (int, error) {
	c := r.env.Config
	cached, err := cachedRepoIDs(c)
	if err != nil {
		return ExitFailure, err
	}
	args := []string{
		"--installroot=" + c.InstallRootPath(),
		"--config=" + c.Path(dnfconf.DNFConf),
		"--setopt=reposdir=" + c.Path(dom0.CachedRepoConfDir),
		// A repository that dnf.conf itself defines is not in reposdir: only
		// the cached repository's may be enabled.
		"--disablerepo=*",
		// Package files are refused as arguments (options.go); should dnf
		// ever take one anyway, it checks its signature.
		"--setopt=localpkg_gpgcheck=1",
		"--noplugins",
		// metadata_expire=0 alone is not enough: dnf calls its cache
		// expired only when it is more than 0 whole seconds old, so a run
		// within the second of the previous one read the old repodata and
		// did not see what was just published (measured with dnf 4.14;
		// TestDom0DNFRefreshesCachedRepo).
		"--refresh",
	}
	for _, id := range cached {
		// dnf checks the signatures both verifiers checked once more,
		// whatever gpgcheck= the repository file or dnf.conf says (a
		// repository's --setopt overrides both, measured with dnf 4.14).
		args = append(args, "--enablerepo="+id, "--setopt="+id+".gpgcheck=1")
	}
	if c.ReleaseVer != "" {
		args = append(args, "--releasever="+c.ReleaseVer)
	}
	if r.o.AssumeYes {
		args = append(args, "-y")
	}
	if r.o.AssumeNo {
		args = append(args, "--assumeno")
	}
	args = append(append(append(args, r.o.DNFOptions...), r.o.Action), r.o.Packages...)
	if r.o.Action == "remove" {
		r.say("Running dnf remove in dom0")
	} else {
		r.say("Running dnf %s in dom0 from the verified cached repository", r.o.Action)
	}
	before, listErr := r.env.Tools.InstalledPackages(ctx, c.InstallRootPath())
	if ctx.Err() != nil {
		// Interrupted before dnf started: dnf never got the signal, and
		// must not start now.
		return ExitFailure, fmt.Errorf("%w before dnf started in dom0: nothing was installed; the verified packages stay in the cached repository", ErrInterrupted)
	}
	// Not cancelled with the run: killing dnf (SIGKILL) in the middle of
	// its rpm transaction could leave dom0's rpm database half done. dnf
	// gets a terminal's Ctrl-C or hangup itself, and stops where rpm can.
	// Without -y dnf asks before it changes anything, and a stdin that is
	// no terminal answers no: only then is "run again with -y" the advice,
	// not after any failure (a name that matches nothing).
	var dnfOut io.Writer = r.env.Stderr
	aborted := &phraseWatch{w: r.env.Stderr, phrase: dnfAborted}
	if !r.o.AssumeYes && !r.o.AssumeNo && !cmdline.IsTerminal(r.env.Stdin) {
		dnfOut = aborted
	}
	// Nor is the listing after it: a SIGTERM while dnf ran must not lose
	// the record of what dnf changed, or the check of what it left out.
	settled := context.WithoutCancel(ctx)
	code, err := r.env.Tools.DNF(settled, args, r.env.Stdin, dnfOut, dnfOut)
	r.rep.DNFExit = &code
	var after []repometa.NEVRA
	if listErr == nil {
		if after, listErr = r.env.Tools.InstalledPackages(settled, c.InstallRootPath()); listErr == nil {
			r.rep.Installed, r.rep.Removed = transaction(before, after)
			if r.o.Action == "reinstall" && code == 0 && err == nil && r.rep.Result != nil {
				r.rep.Reinstalled = reinstalled(r.rep.Result.Packages, before, after, r.o.Packages)
			}
		}
	}
	if listErr != nil {
		// What dnf did is in its own log; only this record lacks it.
		warnf(r.env.Stderr, "the update log will not list what dnf changed, and whether dnf left out a verified update was not checked: %v", listErr)
	}
	if err != nil {
		return ExitFailure, fmt.Errorf("running dnf in dom0: %w", err)
	}
	switch {
	case code != 0 && (ctx.Err() != nil || code > 128 && code <= 128+64):
		// A signal that killed dnf (SIGTERM, SIGHUP of a closed terminal),
		// or the run's own interruption (a Ctrl-C reaches dnf too, which
		// then exits 1), is an interruption, not a refusal.
		how := fmt.Sprintf("ended with exit %d after the run was interrupted", code)
		if code > 128 && code <= 128+64 {
			name := unix.SignalName(syscall.Signal(code - 128))
			if name == "" { // a real-time signal
				name = fmt.Sprintf("signal %d", code-128)
			}
			how = fmt.Sprintf("was killed by %s (exit %d)", name, code)
		}
		return ExitFailure, fmt.Errorf("dnf %s in dom0 %s: it may have done part of its transaction (listed above and in the update log); the verified packages stay in the cached repository; run again",
			r.o.Action, how)
	case code != 0 && r.o.AssumeNo:
		// dnf answers its own question no and exits 1 (as dnf does).
		kept := "; the verified packages stay in the cached repository"
		if r.o.Action == "remove" {
			kept = "" // nothing was downloaded
		}
		return ExitFailure, fmt.Errorf("dnf %s in dom0 ended with exit %d under --assumeno: it changed nothing (its output above shows the transaction, or why there was none)%s", r.o.Action, code, kept)
	case code != 0 && aborted.seen:
		if ifFailed != "" {
			ifFailed = "; " + ifFailed
		}
		return ExitFailure, fmt.Errorf("dnf %s in dom0 failed (exit %d): without -y dnf asks before it changes anything, and stdin is not a terminal that could answer (%q above); run again with -y%s", r.o.Action, code, dnfAborted, ifFailed)
	case code != 0 && ifFailed == "":
		return ExitFailure, fmt.Errorf("dnf %s in dom0 failed (exit %d)", r.o.Action, code)
	case code != 0:
		return ExitFailure, fmt.Errorf("dnf %s in dom0 failed (exit %d); %s", r.o.Action, code, ifFailed)
	}
	if r.o.Action == "upgrade" && r.rep.Result != nil && listErr == nil {
		if skipped := heldBack(r.rep.Result.Packages, after); len(skipped) > 0 {
			return ExitFailure, fmt.Errorf("dnf upgrade in dom0 left out %d verified update(s) of installed packages: %s. dnf skips an update whose dependencies it cannot meet, which %s can cause by holding a dependency back (M2); what dnf installed stays installed, and the verified packages stay in the cached repository. Run again; if it recurs, see what dnf says it skipped above",
				len(skipped), strings.Join(skipped, ", "), c.UpdateVM)
		}
	}
	return ExitOK, nil
}

// heldBack are the verified packages of an upgrade that dnf did not
// install although an older build of them is installed, and those that
// left a package they obsolete installed: dnf leaves out an update whose
// dependencies the delivery lacks and still exits 0 (with best=False, dnf's
// default), so an UpdateVM could withhold an update by withholding what it
// needs, which the withholding check, judging names only, passes (M2). An
// obsoleting package excuses the updates of what it obsoletes from that
// check, so it must have replaced them: dnf skips it, too, when the
// delivery lacks its dependencies.
func heldBack(delivered []dom0.PackageCheck, after []repometa.NEVRA) []string {
	installed := make(map[string]bool, 2*len(after))
	for _, p := range after {
		// dom0's result writes an epoch the header has, 0 included.
		installed[p.String()] = true
		installed[fmt.Sprintf("%s-%d:%s-%s.%s", p.Name, p.EVR.Epoch, p.EVR.Version, p.EVR.Release, p.Arch)] = true
	}
	var skipped []string
	for _, d := range delivered {
		if !d.OK {
			continue
		}
		dot := strings.LastIndexByte(d.NEVRA, '.')
		nevr, arch := d.NEVRA[:max(dot, 0)], d.NEVRA[dot+1:]
		for _, p := range after {
			// d is NAME-[E:]V-R.ARCH: with p's name around exactly one '-'
			// (hello-ng-2.0-1.noarch is not hello's), and an arch p may
			// move to: dnf updates a package between an arch and noarch,
			// as dom0's withholding check counts it.
			evr, nameOK := strings.CutPrefix(nevr, p.Name+"-")
			archOK := arch == p.Arch || arch == "noarch" || p.Arch == "noarch"
			sameName := nameOK && archOK && strings.Count(evr, "-") == 1
			// Something d obsoletes is still there, whether or not d was
			// installed: d did not replace it. (A package obsoleting older
			// builds of its own name is judged as an update.)
			if sameName && !installed[d.NEVRA] ||
				!sameName && slices.ContainsFunc(d.Obsoletes, func(o rpm.Obsolete) bool { return o.Covers(p.Name, p.EVR) }) {
				skipped = append(skipped, d.NEVRA)
				break
			}
		}
	}
	return skipped
}

// transaction is what changed between two listings of dom0's rpm
// database: the NEVRAs only after holds (installed) and only before holds
// (removed), sorted.
func transaction(before, after []repometa.NEVRA) (installed, removed []string) {
	was := make(map[string]bool, len(before))
	for _, p := range before {
		was[p.String()] = true
	}
	for _, p := range after {
		if n := p.String(); was[n] {
			delete(was, n)
		} else {
			installed = append(installed, n)
		}
	}
	for n := range was {
		removed = append(removed, n)
	}
	slices.Sort(installed)
	slices.Sort(removed)
	return installed, removed
}

// reinstalled lists the verified packages of a delivery that the user's
// patterns name and that were installed both before and after dnf ran (one
// the UpdateVM added unasked is no reinstall). Patterns that name no
// delivered package by its name or version (a file, a provide) leave every
// such package listed.
func reinstalled(delivered []dom0.PackageCheck, before, after []repometa.NEVRA, patterns []string) []string {
	if !slices.ContainsFunc(after, func(p repometa.NEVRA) bool { return repometa.Matches(patterns, p) }) {
		patterns = []string{"*"}
	}
	var out []string
	for _, p := range after {
		// The verifier writes an epoch of 0 when the header has one; rpm -qa's
		// listing leaves it out.
		forms := []string{p.String(), fmt.Sprintf("%s-%d:%s-%s.%s", p.Name, p.EVR.Epoch, p.EVR.Version, p.EVR.Release, p.Arch)}
		if repometa.Matches(patterns, p) && slices.Contains(before, p) && slices.ContainsFunc(delivered, func(d dom0.PackageCheck) bool { return d.OK && slices.Contains(forms, d.NEVRA) }) {
			out = append(out, p.String())
		}
	}
	slices.Sort(out)
	return out
}

// UpdateLockFile, in dom0's state directory, is held by the running
// pedos-dom0-update (F3). The receive service does not look at it: a
// session is bound to its run by a lock of its own (NewSession).
const UpdateLockFile = "update.lock"

// Lock takes dom0's update lock (F3): one update at a time. It is the
// first thing a run writes, so it is where a user other than root fails.
// A session file found once the lock is taken was left by a run killed
// outright; the receive service refuses it already (its run no longer
// holds it: NewSession), and it is removed.
func Lock(c dom0.Config) (func(), error) {
	dir := c.Path(dom0.StateDir)
	path := filepath.Join(dir, UpdateLockFile)
	err := os.MkdirAll(dir, 0o700)
	var unlock func()
	if err == nil {
		unlock, err = dom0.LockFile(path)
	}
	if err != nil {
		return nil, lockError(path, err)
	}
	if err := os.Remove(filepath.Join(dir, dom0.SessionFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		unlock()
		return nil, fmt.Errorf("removing the session a killed update left: %w", err)
	}
	return unlock, nil
}

// lockError says what a failure to take the update lock at path means: for
// root, a permission error is no advice to run as root (an immutable file).
func lockError(path string, err error) error {
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		return fmt.Errorf("another update is running (%s is locked)", path)
	case errors.Is(err, os.ErrPermission) && os.Geteuid() != 0:
		// overview.md step 1 allows "root, or the update group"; only root
		// is supported (operations.md, "Differences from the spec").
		return fmt.Errorf("run pedos-dom0-update as root: only root can install packages in dom0 and write its update state (%s, mode 0700); there is no update group. It could not take the update lock: %w", filepath.Dir(path), err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("dom0's update state directory %s is on a read-only file system: an update must write its state there (remount it read-write): %w", filepath.Dir(path), err)
	case errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.ENOTDIR):
		// MkdirAll over a link to nothing, or over a file.
		return fmt.Errorf("dom0's update state directory %s is not a directory (a file, or a link to a missing one: is the file system it points to mounted?): %w", filepath.Dir(path), err)
	case err != nil:
		return fmt.Errorf("taking the update lock: %w", err)
	}
	return nil
}

// checkReceiveSettings checks, before anything is downloaded, what only a
// delivery and the install after it read: the pinned metadata keys, the
// keyring directory, the unpacker's user, the freshness state and the
// cached repository's configuration. The receive checks them again (it
// trusts no caller), but a person should hear of a typo or a damaged file
// before the UpdateVM has downloaded and sent everything, and before a
// delivery is published that dom0's dnf could then not install.
func checkReceiveSettings(c dom0.Config) error {
	if _, err := c.PinnedKeys(); err != nil {
		return err
	}
	if _, err := os.ReadDir(c.Path(c.KeyringDir)); err != nil {
		return fmt.Errorf("%s: keyring: %w", dom0.ConfigPath, err)
	}
	if _, _, err := sandbox.ResolveUser(c.UnpackerUser); err != nil {
		return fmt.Errorf("%s: unpacker_user: %w", dom0.ConfigPath, err)
	}
	if _, err := repometa.Load(c.Root, time.Time{}, time.Now()); err != nil {
		return err
	}
	// A full file system would end the delivery without a result, which
	// the person would see only as a service that "failed or was killed".
	state := c.Path(dom0.StateDir)
	free, err := dom0.FreeBytes(state)
	if err != nil {
		return fmt.Errorf("free space in %s: %w", state, err)
	}
	if free < dom0.MinFreeBytes {
		return fmt.Errorf("the file system of %s has %d bytes free, too few for a delivery and its result: free space there (--clean empties the cached repository); nothing was sent", state, free)
	}
	_, err = cachedRepoIDs(c)
	return err
}

// keyTime is the time the front end judges keys at: the later of dom0's
// clock and the time floor saved in the freshness state, which a clock set
// back cannot lower (verify.md §2 step 4). The receive judges at that
// floor, raised further by its build time; judging at the clock alone, the
// front end would ship a key the receive then refuses. A state it cannot
// read leaves the clock (checkReceiveSettings refuses a delivery then).
func keyTime(c dom0.Config) time.Time {
	state, err := repometa.Load(c.Root, time.Time{}, time.Now())
	if err != nil {
		return time.Now()
	}
	return state.TimeFloor(nil)
}

// warnExpiredPins says which pinned metadata key can sign nothing at
// keyTime (expired, or its signing subkeys are): the receive refuses that
// repository's metadata as bad-signature only after the download. A
// warning: the receive decides.
func warnExpiredPins(c dom0.Config, warn io.Writer) {
	at := keyTime(c)
	for _, id := range slices.Sorted(maps.Keys(c.MetadataKeys)) {
		keys, err := rpm.ReadKeyFile(c.Path(c.MetadataKeys[id]))
		if err != nil || len(keys) != 1 {
			continue // PinnedKeys has refused it already
		}
		if _, ok := keys[0].SigningKey(at); !ok {
			warnf(warn, "%s: repo.%s.metadata_key %s has no key that can sign at %s (expired?; the later of dom0's clock and the newest metadata time accepted): the repository's metadata will be refused (bad-signature) until the publisher's current key is pinned",
				dom0.ConfigPath, id, c.MetadataKeys[id], at.UTC().Format(time.RFC3339))
		}
	}
}
