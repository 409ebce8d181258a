package frontend

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/dnftool"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/qrexec/policy"
	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/rpmver"
	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
	"pedos.dev/updates/internal/updatecall"
)

// The UpdateVM is another domain: these tests stand in for it with
// fakeVM, which runs the commands dom0 sends as a Go function, and for
// dom0's receive service with the real session and result code of
// internal/dom0 (deliver).

type fakeVM struct {
	mu    sync.Mutex
	calls [][]string
	sync  []byte // the last --sync call's tar stream
	// download answers every call but --sync.
	download func(argv []string, stdout, stderr io.Writer) int
	// downloadErr is what the caller returns with it (nil: the call ended).
	downloadErr error
}

func (f *fakeVM) Run(_ context.Context, _ string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	f.mu.Lock()
	f.calls = append(f.calls, argv)
	f.mu.Unlock()
	if argv[1] == "--sync" {
		tarball, err := io.ReadAll(stdin)
		f.mu.Lock()
		f.sync = tarball
		f.mu.Unlock()
		return 0, err
	}
	return f.download(argv, stdout, stderr), f.downloadErr
}

// fakeTools stands in for dom0's rpm database and dnf: the result of dnf in
// dom0 is not what these tests are about (internal/e2e runs the real ones).
// Its dnf turns the database's packages into dnfLeaves. createrepo_c is
// the real one.
type fakeTools struct {
	mu        sync.Mutex
	dnfArgs   [][]string
	dnfExit   int
	dnfOutput []string // what dnf prints, one write each
	installed []repometa.NEVRA
	dnfLeaves []repometa.NEVRA
	duringDNF func() // if set, called while dnf runs
	provides  map[string][]string
}

func (f *fakeTools) ExportRPMDB(string, io.Writer) error { return nil }

func (f *fakeTools) DNF(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, out := range f.dnfOutput {
		if _, err := io.WriteString(stdout, out); err != nil {
			return 0, err
		}
	}
	f.dnfArgs = append(f.dnfArgs, args)
	f.installed = f.dnfLeaves
	if f.duringDNF != nil {
		f.duringDNF()
	}
	return f.dnfExit, nil
}

// InstalledPackages fails on a cancelled ctx, as rpm run with it would.
func (f *fakeTools) InstalledPackages(ctx context.Context, _ string) ([]repometa.NEVRA, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.installed, nil
}

// WhatProvides answers from provides, capability → installed providers.
func (f *fakeTools) WhatProvides(_ context.Context, _, capability string) ([]string, error) {
	return f.provides[capability], nil
}

func (f *fakeTools) CreateRepo(ctx context.Context, dir string) error {
	tools, err := pkgtool.NewTools("")
	if err != nil {
		return err
	}
	defer tools.Close()
	return tools.CreateRepo(ctx, dir)
}

// output is a file that stands in for the front end's stdout or stderr:
// several goroutines write it, as they write the real ones.
type output struct{ *os.File }

func newOutput(t *testing.T) output {
	f, err := os.CreateTemp(t.TempDir(), "output-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return output{f}
}

func (o output) String() string {
	b, _ := os.ReadFile(o.Name())
	return string(b)
}

type testRun struct {
	config         dom0.Config
	vm             *fakeVM
	tools          *fakeTools
	stdout, stderr output
}

func newTestRun(t *testing.T, download func(argv []string, stdout, stderr io.Writer) int) *testRun {
	c := dom0.DefaultConfig(t.TempDir())
	c.UpdateVM = "sys-test"
	// dom0's rpm database: the front end only checks that there is one
	// (fakeTools exports it).
	db := c.Path("/var/lib/rpm/rpmdb.sqlite")
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The keyring the receive will read (CheckReceive).
	if err := os.MkdirAll(c.Path(c.KeyringDir), 0o755); err != nil {
		t.Fatal(err)
	}
	// The cached repository's definition, as dist/dom0 ships it.
	cachedConf := c.Path(dom0.CachedRepoConfDir + "/PedOS-cached.repo")
	if err := os.MkdirAll(filepath.Dir(cachedConf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cachedConf, []byte("[pedos-dom0-cached]\nbaseurl=file:///var/lib/PedOS/updates\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A network repository for the UpdateVM (checkNetworkRepos).
	if err := os.MkdirAll(c.Path("/etc/yum.repos.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path("/etc/yum.repos.d/vendor.repo"), []byte("[vendor]\nbaseurl=http://mirror.invalid/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testRun{config: c, vm: &fakeVM{download: download}, tools: &fakeTools{}, stdout: newOutput(t), stderr: newOutput(t)}
}

func (tr *testRun) run(t *testing.T, args ...string) int {
	t.Helper()
	o, err := ParseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	return Run(context.Background(), o, Env{Config: tr.config, VM: tr.vm, Tools: tr.tools,
		Stdin: strings.NewReader(""), Stdout: tr.stdout, Stderr: tr.stderr, DownloadCommand: "pedos-download-dom0-updates"})
}

// sessionArg is the --session= of a download command line.
func sessionArg(argv []string) string {
	for _, a := range argv {
		if id, ok := strings.CutPrefix(a, "--session="); ok {
			return id
		}
	}
	return ""
}

// deliver plays dom0's receive service for the session of argv: it takes
// the receive lock, claims the session, as the service does, and writes res
// after delay, in the background; the test waits for it.
func deliver(t *testing.T, c dom0.Config, argv []string, delay time.Duration, res dom0.Result) {
	unlock, err := dom0.LockFile(filepath.Join(c.Path(dom0.StateDir), dom0.ReceiveLockFile))
	if err != nil {
		t.Errorf("taking the receive lock: %v", err)
		return
	}
	s, err := dom0.ClaimSession(c, sessionArg(argv), time.Now())
	if err != nil {
		unlock()
		t.Errorf("claiming the session: %v", err)
		return
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Go(func() {
		defer unlock()
		time.Sleep(delay)
		res.Session, res.Caller = s.ID, c.UpdateVM
		if err := dom0.WriteResult(c, res); err != nil {
			t.Errorf("writing the result: %v", err)
		}
	})
}

var onePackage = dom0.Result{Accepted: true, Packages: []dom0.PackageCheck{{File: "hello-1.1-1.noarch.rpm", OK: true, NEVRA: "hello-1.1-1.noarch"}}}

// overview.md step 7: the UpdateVM's command may end while dom0 still
// verifies its delivery; the front end waits for dom0's result.
func TestRunWaitsForAClaimedDelivery(t *testing.T) {
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 700*time.Millisecond, onePackage)
		return 0
	}
	if code := tr.run(t, "-y"); code != ExitOK {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, tr.stderr)
	}
	if len(tr.tools.dnfArgs) != 1 || !strings.Contains(tr.stderr.String(), "verified: hello-1.1-1.noarch") {
		t.Fatalf("dnf ran %d times, want once after the verified delivery; stderr:\n%s", len(tr.tools.dnfArgs), tr.stderr)
	}
	// Only the cached repository: a repository dnf.conf itself defines is not in reposdir;
	// and dnf checks its signatures whatever gpgcheck= its file says.
	if args := strings.Join(tr.tools.dnfArgs[0], " "); !strings.Contains(args,
		"--disablerepo=* --setopt=localpkg_gpgcheck=1 --noplugins --refresh --enablerepo=pedos-dom0-cached --setopt=pedos-dom0-cached.gpgcheck=1 ") {
		t.Errorf("dnf in dom0: %s; want every repository disabled but the cached one, with its signatures checked", args)
	}
}

// --releasever (a distribution upgrade's habit) is this run's $releasever
// on both sides: in the sync the UpdateVM's dnf reads it from, and for
// dom0's dnf; updates.conf's is the default.
func TestRunReleaseVer(t *testing.T) {
	tr := newTestRun(t, nil)
	tr.config.ReleaseVer = "41"
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, onePackage)
		return 0
	}
	if code := tr.run(t, "-y", "--releasever=42"); code != ExitOK {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, tr.stderr)
	}
	var synced string
	for r := tar.NewReader(bytes.NewReader(tr.vm.sync)); ; {
		h, err := r.Next()
		if err != nil {
			break
		}
		if h.Name == updatecall.SyncReleaseVer {
			b, _ := io.ReadAll(r)
			synced = string(b)
		}
	}
	if synced != "42\n" {
		t.Errorf("the sync's %s holds %q, want \"42\\n\"", updatecall.SyncReleaseVer, synced)
	}
	if len(tr.tools.dnfArgs) != 1 || !slices.Contains(tr.tools.dnfArgs[0], "--releasever=42") {
		t.Errorf("dom0's dnf ran with %q, want --releasever=42", tr.tools.dnfArgs)
	}
	// The freshness state is per repository id: the warning says what a run at another release leaves.
	if want := `--releasever=42 differs from releasever in /etc/pedos/updates.conf ("41"): the metadata this run accepts becomes each repository's high-water mark`; !strings.Contains(tr.stderr.String(), want) {
		t.Errorf("no warning %q; stderr:\n%s", want, tr.stderr)
	}
	// A run that delivers nothing accepts no metadata: no warning.
	check := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
	check.config.ReleaseVer = "41"
	if code := check.run(t, "--check-only", "--releasever=42"); code != ExitOK || strings.Contains(check.stderr.String(), "differs from releasever") {
		t.Errorf("--check-only --releasever=42: exit %d, want 0 and no warning; stderr:\n%s", code, check.stderr)
	}
}

// An empty delivery ends the run without dnf only for a plain upgrade,
// where dom0's withholding check vouches for "no update". An install that
// the UpdateVM turned into an empty delivery (M1) still runs dnf in dom0,
// which finds no match in the cached repository and fails: the run must
// not report it done.
func TestRunEmptyDelivery(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		dnfExit int
		wantDNF []string // the end of dnf's command line; nil: no dnf
		want    int
	}{
		{[]string{"-y"}, 0, nil, ExitOK},
		{[]string{"-y", "--action=install", "extra"}, 1, []string{"install", "extra"}, ExitFailure},
		{[]string{"-y", "--action=reinstall", "hello"}, 1, []string{"reinstall", "hello"}, ExitFailure},
		{[]string{"-y", "--action=upgrade", "hello"}, 0, []string{"upgrade", "hello"}, ExitOK},
		{[]string{"-y", "--downloadonly", "--action=install", "extra"}, 0, nil, ExitOK},
	} {
		tr := newTestRun(t, nil)
		tr.tools.dnfExit = tc.dnfExit
		tr.vm.download = func(argv []string, _, _ io.Writer) int {
			deliver(t, tr.config, argv, 0, dom0.Result{Accepted: true})
			return 0
		}
		code := tr.run(t, tc.args...)
		ranDNF := tc.wantDNF == nil && len(tr.tools.dnfArgs) == 0 ||
			len(tr.tools.dnfArgs) == 1 && strings.HasSuffix(strings.Join(tr.tools.dnfArgs[0], " "), " "+strings.Join(tc.wantDNF, " "))
		told := tc.want == ExitOK || strings.Contains(tr.stderr.String(), "sys-test delivered no packages for this "+tc.wantDNF[0]) && strings.Contains(tr.stderr.String(), "its cached repository is now empty") &&
			!strings.Contains(tr.stderr.String(), "verified packages stay")
		// --downloadonly runs no dnf: the run warns that nothing came for what was named.
		downloadOnly := slices.Contains(tc.args, "--downloadonly")
		if downloadOnly && !strings.Contains(tr.stderr.String(), "warning: sys-test delivered no packages for this install") {
			t.Errorf("%q: no warning that nothing was delivered; stderr:\n%s", tc.args, tr.stderr)
		}
		if code != tc.want || !ranDNF || !told || strings.Contains(tr.stderr.String(), "nothing to do") != (tc.wantDNF == nil && !downloadOnly) {
			t.Errorf("%q: exit %d, dnf ran %q; want exit %d, dnf ending %q; stderr:\n%s", tc.args, code, tr.tools.dnfArgs, tc.want, tc.wantDNF, tr.stderr)
		}
	}
}

// dnf killed by a signal (SIGTERM, SIGHUP of a closed terminal) is said to
// be an interruption, naming the signal, not a refusal with the empty
// delivery's explanation that blames the UpdateVM.
func TestRunDNFKilledBySignal(t *testing.T) {
	tr := newTestRun(t, nil)
	tr.tools.dnfExit = 143
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, dom0.Result{Accepted: true})
		return 0
	}
	code := tr.run(t, "-y", "--action=install", "hello")
	if stderr := tr.stderr.String(); code != ExitFailure || !strings.Contains(stderr, "dnf install in dom0 was killed by SIGTERM (exit 143)") || strings.Contains(stderr, "held it back") {
		t.Errorf("exit %d; want 1 naming SIGTERM, not the UpdateVM; stderr:\n%s", code, stderr)
	}
	// A Ctrl-C after dnf's start-up: dnf exits 1, and the run, interrupted
	// too, says so.
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	tr = newTestRun(t, nil)
	tr.tools.dnfExit, tr.tools.duringDNF = 1, interrupt
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, dom0.Result{Accepted: true})
		return 0
	}
	code = installHello(t, ctx, tr, tr.tools)
	if stderr := tr.stderr.String(); code != ExitFailure || !strings.Contains(stderr, "dnf install in dom0 ended with exit 1 after the run was interrupted") || strings.Contains(stderr, "held it back") {
		t.Errorf("exit %d; want 1 saying the run was interrupted, not blaming the UpdateVM; stderr:\n%s", code, stderr)
	}
}

// Only 129-192 (128 plus a signal number, as the shell says) is dnf killed
// by a signal: dnf's own exit statuses above 128 (200: another process
// holds dnf's lock) and 128 itself are dnf failing, said as such, not an
// interruption.
func TestRunDNFExitStatusesThatAreNoSignal(t *testing.T) {
	for code, want := range map[int]string{
		200: "dnf install in dom0 failed (exit 200)",
		128: "dnf install in dom0 failed (exit 128)",
		129: "dnf install in dom0 was killed by SIGHUP (exit 129)",
		192: "dnf install in dom0 was killed by signal 64 (exit 192)", // SIGRTMAX, named by number
	} {
		tr := newTestRun(t, nil)
		tr.tools.dnfExit = code
		tr.vm.download = func(argv []string, _, _ io.Writer) int {
			deliver(t, tr.config, argv, 0, dom0.Result{Accepted: true})
			return 0
		}
		got := tr.run(t, "-y", "--action=install", "hello")
		if stderr := tr.stderr.String(); got != ExitFailure || !strings.Contains(stderr, want) || strings.Contains(stderr, "killed by") != (code > 128 && code <= 192) {
			t.Errorf("dnf exit %d: exit %d; want 1 saying %q; stderr:\n%s", code, got, want, stderr)
		}
	}
}

// installHello runs pedos-dom0-update -y --action=install hello with ctx
// (cancelled: the run interrupted) and tools.
func installHello(t *testing.T, ctx context.Context, tr *testRun, tools Tools) int {
	t.Helper()
	o, err := ParseArgs([]string{"-y", "--action=install", "hello"})
	if err != nil {
		t.Fatal(err)
	}
	return Run(ctx, o, Env{Config: tr.config, VM: tr.vm, Tools: tools, Stdin: strings.NewReader(""),
		Stdout: tr.stdout, Stderr: tr.stderr, DownloadCommand: "pedos-download-dom0-updates"})
}

// interruptingTools is fakeTools whose first listing of dom0's packages
// sees the run interrupted, as a Ctrl-C during the rpm -qa before dnf.
type interruptingTools struct {
	*fakeTools
	interrupt func()
}

func (i *interruptingTools) InstalledPackages(ctx context.Context, root string) ([]repometa.NEVRA, error) {
	i.interrupt()
	return i.fakeTools.InstalledPackages(ctx, root)
}

// A run interrupted before dnf starts (during the listing of dom0's
// packages) does not start dnf, which never got the signal (review: with -y
// it installed, and the run exited 0).
func TestRunInterruptedBeforeDNF(t *testing.T) {
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, dom0.Result{Accepted: true})
		return 0
	}
	code := installHello(t, ctx, tr, &interruptingTools{tr.tools, interrupt})
	if code != ExitFailure || len(tr.tools.dnfArgs) != 0 || !strings.Contains(tr.stderr.String(), "before dnf started in dom0: nothing was installed") {
		t.Errorf("exit %d, dnf ran %q; want 1, no dnf, saying so; stderr:\n%s", code, tr.tools.dnfArgs, tr.stderr)
	}
}

// With require_fresh off, stale metadata is a warning: "no updates" then
// says against what it was judged (M9), though the run succeeds.
func TestRunNoUpdatesAgainstStaleMetadata(t *testing.T) {
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, dom0.Result{Accepted: true, Findings: []dom0.Finding{
			{Kind: "stale", Repo: "vendor", Message: "warning: metadata for repo vendor is 9 days old"}}})
		return 0
	}
	code := tr.run(t, "-y")
	if want := "No updates for dom0 in metadata older than max_metadata_age (see the warning above)"; code != ExitOK || !strings.Contains(tr.stderr.String(), want) {
		t.Errorf("exit %d, want 0 saying %q; stderr:\n%s", code, want, tr.stderr)
	}
}

// dom0 refused the delivery for a reason that is no package (a keyring
// typo in updates.conf): the reason is an error line and in the JSON
// report's message, escaped; package rejections keep their rejected: lines.
func TestRunRefusedDelivery(t *testing.T) {
	reason := "keyring /etc/pki/rpm-gpq: open /etc/pki/rpm-gpq: no such file or directory \033[2J"
	shown := `keyring /etc/pki/rpm-gpq: open /etc/pki/rpm-gpq: no such file or directory \x1b[2J`
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, dom0.Result{Error: reason, Packages: []dom0.PackageCheck{
			{File: "bad-1-1.noarch.rpm", Rejected: "package is not signed", Kind: "unsigned"}}})
		return 0
	}
	if code := tr.run(t, "--json", "-y"); code != ExitFailure {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, tr.stderr)
	}
	stderr := tr.stderr.String()
	for _, want := range []string{"    error: dom0 refused the delivery: " + shown + "\n",
		"    rejected: bad-1-1.noarch.rpm: unsigned: package is not signed\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "rejected: keyring") || strings.Contains(stderr, "\033") {
		t.Errorf("the reason is shown as a package rejection, or unescaped:\n%s", stderr)
	}
	rep := decodeOneReport(t, tr.stdout.String())
	if want := "dom0 refused the delivery from sys-test (unsigned: bad-1-1.noarch.rpm): " + shown + "; nothing was installed"; !strings.HasPrefix(rep.Message, want) {
		t.Errorf("message %q, want it to begin %q", rep.Message, want)
	}
	if rep.Result == nil || len(rep.Result.Packages) != 1 || rep.ResultPackageCount != 0 {
		t.Errorf("--json's result: %+v, %d, want its package", rep.Result, rep.ResultPackageCount)
	}
	// The update log's finished record counts the packages the delivery
	// record of the same session lists.
	log, err := os.ReadFile(tr.config.Path(dom0.LogPath))
	if err != nil || strings.Contains(string(log), `"kind":"unsigned"`) || strings.Contains(string(log), `"packages"`) || !strings.Contains(string(log), `"result_package_count":1`) {
		t.Errorf("update log (%v):\n%s\nwant the result's packages counted, not listed", err, log)
	}
}

// A receive service that claimed the session and then died (F1) leaves no
// result: the front end says so once the service is gone, and does not
// wait for the session's deadline.
func TestRunReceiveServiceGone(t *testing.T) {
	defer func(d time.Duration) { serviceGoneAfter = d }(serviceGoneAfter)
	serviceGoneAfter = 200 * time.Millisecond
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		if _, err := dom0.ClaimSession(tr.config, sessionArg(argv), time.Now()); err != nil {
			t.Error(err)
		}
		return 1
	}
	if code := tr.run(t); code != ExitFailure || !strings.Contains(tr.stderr.String(), "ended without a result") {
		t.Fatalf("exit %d, want 1 naming the missing result; stderr:\n%s", code, tr.stderr)
	}
}

// A receive service that could not write its result for want of space says
// nothing the front end can read: the message names the full file system
// (the delivery may have been published), not a service that failed or an
// UpdateVM that hung up.
func TestRunReceiveServiceGoneOnAFullDisk(t *testing.T) {
	defer func(d time.Duration) { serviceGoneAfter = d }(serviceGoneAfter)
	serviceGoneAfter = 200 * time.Millisecond
	tr := newTestRun(t, nil)
	state := tr.config.Path(dom0.StateDir)
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	testbin.Tmpfs(t, state, "size=2m,mode=0700")
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		if _, err := dom0.ClaimSession(tr.config, sessionArg(argv), time.Now()); err != nil {
			t.Error(err)
		}
		// What else filled the disk meanwhile.
		if err := os.WriteFile(filepath.Join(state, "filler"), make([]byte, 2<<20), 0o600); !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("filling the state's file system: %v", err)
		}
		return 1
	}
	if code := tr.run(t); code != ExitFailure || !strings.Contains(tr.stderr.String(), "ended without a result: the file system of "+state+" has 0 bytes free, a full disk is the likely cause") {
		t.Fatalf("exit %d, want 1 naming the full disk; stderr:\n%s", code, tr.stderr)
	}
}

// Ctrl-C after dom0 took the delivery: the run ends saying it was
// interrupted, not with a context's error.
func TestRunInterruptedWhileDom0Verifies(t *testing.T) {
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		if _, err := dom0.ClaimSession(tr.config, sessionArg(argv), time.Now()); err != nil {
			t.Error(err)
		}
		interrupt()
		return 0
	}
	o, err := ParseArgs([]string{"-y"})
	if err != nil {
		t.Fatal(err)
	}
	code := Run(ctx, o, Env{Config: tr.config, VM: tr.vm, Tools: tr.tools, Stdin: strings.NewReader(""),
		Stdout: tr.stdout, Stderr: tr.stderr, DownloadCommand: "pedos-download-dom0-updates"})
	if want := "interrupted (Ctrl-C, SIGTERM or SIGHUP): stopped waiting for dom0's verdict on the delivery from sys-test\n"; code != ExitFailure || !strings.HasSuffix(tr.stderr.String(), want) {
		t.Fatalf("exit %d, want 1 ending %q; stderr:\n%s", code, want, tr.stderr)
	}
}

// A delivery after the session's deadline (a slow mirror) is refused by
// the receive service (126) or cut off by dom0's call (125): the message
// names the deadline and receive_timeout, not the policy.
func TestRunDeliveryAfterTheDeadline(t *testing.T) {
	late := "sys-test did not deliver before the session's deadline ("
	for _, c := range []struct {
		code     int
		err      error
		exit     int
		want     string
		deadline bool // the message names receive_timeout
	}{
		{ExitRefused, nil, ExitRefused, late, true},
		{ExitQrexecFailure, fmt.Errorf("sys-test did not answer before dom0's deadline (1s); %w", ErrCallDeadline), ExitQrexecFailure, "dom0 ended its call there, the download still running", true},
		// Failures of their own, whenever they come: not the deadline's.
		{1, nil, ExitFailure, "the download in sys-test failed (exit 1): sys-test's lines above say why", false},
		{ExitQrexecFailure, nil, ExitQrexecFailure, "sys-test could not reach dom0's PedOS.ReceiveUpdates", false},
	} {
		tr := newTestRun(t, func([]string, io.Writer, io.Writer) int {
			time.Sleep(400 * time.Millisecond)
			return c.code
		})
		tr.vm.downloadErr = c.err
		tr.config.ReceiveTimeout = 200 * time.Millisecond
		got := tr.run(t, "-y")
		if got != c.exit || !strings.Contains(tr.stderr.String(), c.want) || c.deadline != strings.Contains(tr.stderr.String(), "receive_timeout 200ms in /etc/pedos/updates.conf") {
			t.Errorf("UpdateVM exit %d (%v) after the deadline: exit %d; want %d saying %q; stderr:\n%s", c.code, c.err, got, c.exit, c.want, tr.stderr)
		}
	}
}

// An UpdateVM that delivers nothing: the session is withdrawn, so that a
// late delivery cannot claim it (C2).
func TestRunNothingDelivered(t *testing.T) {
	tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
	if code := tr.run(t); code != ExitFailure || !strings.Contains(tr.stderr.String(), "delivered nothing") {
		t.Fatalf("exit %d, want 1 saying nothing was delivered; stderr:\n%s", code, tr.stderr)
	}
	if _, err := os.Stat(filepath.Join(tr.config.Path(dom0.StateDir), dom0.SessionFile)); !os.IsNotExist(err) {
		t.Errorf("the session is still live: %v", err)
	}
}

// The UpdateVM passes on qrexec's refusal of its delivery (126): the front
// end names it and exits 126 (overview.md, exit codes).
func TestRunDeliveryRefusedByPolicy(t *testing.T) {
	tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return ExitRefused })
	// No policy of ours here (a PedOS/Qubes host's decides): either may have refused.
	if code := tr.run(t); code != ExitRefused || !strings.Contains(tr.stderr.String(), "dom0 refused the delivery from sys-test (126) before reading it: either dom0's qrexec policy does not let sys-test call") {
		t.Fatalf("exit %d, want 126 naming dom0's policy; stderr:\n%s", code, tr.stderr)
	}
}

// A setting only the receive reads (a pin left for a repository whose key
// file is gone, the keyring, the unpacker's user) is checked before the
// UpdateVM downloads anything: the error names the setting, and the UpdateVM
// is not called.
func TestRunChecksReceiveSettingsFirst(t *testing.T) {
	for _, c := range []struct {
		name, want string
		set        func(*dom0.Config)
	}{
		{"pin of a removed repository", "repo.gone.metadata_key", func(c *dom0.Config) {
			c.MetadataKeys = map[string]string{"gone": "/etc/pki/rpm-gpg/RPM-GPG-KEY-gone"}
		}},
		{"keyring", "keyring", func(c *dom0.Config) { c.KeyringDir = "/etc/pki/rpm-gpq" }},
		{"unpacker user", "unpacker_user", func(c *dom0.Config) { c.UnpackerUser = "no-such-user-here" }},
	} {
		tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
		c.set(&tr.config)
		if code := tr.run(t, "-y"); code != ExitFailure || !strings.Contains(tr.stderr.String(), dom0.ConfigPath+": "+c.want) || len(tr.vm.calls) != 0 {
			t.Errorf("%s: exit %d, UpdateVM called %d times, want 1 naming %s before any call; stderr:\n%s", c.name, code, len(tr.vm.calls), c.want, tr.stderr)
		}
	}
}

// dom0's own files a delivery depends on are checked before the UpdateVM
// downloads anything: a corrupt freshness state (the receive would refuse
// every delivery), and a cached-repository configuration that enables no
// repository (dom0's dnf could not install what the receive publishes).
func TestRunChecksDom0FilesFirst(t *testing.T) {
	for _, c := range []struct {
		name, want string
		damage     func(dom0.Config) error
	}{
		{"corrupt freshness state", "is corrupt", func(c dom0.Config) error {
			if err := os.MkdirAll(filepath.Dir(c.Path(repometa.StatePath)), 0o700); err != nil {
				return err
			}
			return os.WriteFile(c.Path(repometa.StatePath), []byte("{half"), 0o600)
		}},
		{"no cached repository", "no repository is enabled in", func(c dom0.Config) error {
			return os.Remove(c.Path(dom0.CachedRepoConfDir + "/PedOS-cached.repo"))
		}},
		// The delivery would end without a result, a service that "failed".
		{"a full state file system", "bytes free, too few for a delivery and its result", func(c dom0.Config) error {
			if os.Geteuid() != 0 {
				t.Skip("mounting a small file system needs root")
			}
			state := c.Path(dom0.StateDir)
			if err := os.MkdirAll(state, 0o700); err != nil {
				return err
			}
			if err := unix.Mount("tmpfs", state, "tmpfs", 0, "size=256k"); err != nil {
				return err
			}
			t.Cleanup(func() { _ = unix.Unmount(state, unix.MNT_DETACH) })
			return nil
		}},
	} {
		tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
		if err := c.damage(tr.config); err != nil {
			t.Fatal(err)
		}
		if code := tr.run(t, "-y"); code != ExitFailure || !strings.Contains(tr.stderr.String(), c.want) || len(tr.vm.calls) != 0 {
			t.Errorf("%s: exit %d, UpdateVM called %d times, want 1 saying %q before any call; stderr:\n%s", c.name, code, len(tr.vm.calls), c.want, tr.stderr)
		}
	}
}

// dom0's qrexec policy is asked before anything is downloaded whether the
// UpdateVM may deliver: a policy naming another UpdateVM, an UpdateVM the
// daemon does not serve, a policy with a
// syntax error and an allow that runs the service elsewhere or as another
// user are named at once (126; 125 for a domain qrexec cannot reach; 1 for
// the broken file or rule), and
// the UpdateVM is not called. Where
// the policy allows the call, or this project's qrexec is not installed
// (no /etc/pedos/policy.d, or no domains.conf), the update goes on.
func TestRunChecksDeliveryPolicy(t *testing.T) {
	allow := "PedOS.ReceiveUpdates * sys-test dom0 allow\n"
	for _, c := range []struct {
		name, policy, domains, want string
		code                        int
	}{
		{"another UpdateVM", "PedOS.ReceiveUpdates * sys-net dom0 allow\n", "sys-test\n", "does not let sys-test", ExitRefused},
		{"not a domain", allow, "sys-net\n", "sys-test (updatevm in /etc/pedos/updates.conf) is not a domain of /etc/pedos/domains.conf: ", ExitQrexecFailure},
		// A PedOS/Qubes host: our policy.d kept, our domains.conf left out
		// (deploy-qubes.md); its own qrexec decides.
		{"no domains.conf", allow + "!! not a rule\n", "", "delivered nothing", ExitFailure},
		// An allow that runs the call elsewhere, or as another user, cannot
		// deliver: the rule is named.
		{"target elsewhere", "PedOS.ReceiveUpdates * sys-test dom0 allow target=sys-test\n", "sys-test\n", "/50-updates.policy:1 sends sys-test's calls of PedOS.ReceiveUpdates to sys-test (target=)", ExitFailure},
		{"another user", "PedOS.ReceiveUpdates * sys-test dom0 allow user=nobody\n", "sys-test\n", "50-updates.policy:1 runs sys-test's calls of PedOS.ReceiveUpdates as user nobody", ExitFailure},
		{"user root", "PedOS.ReceiveUpdates * sys-test dom0 allow user=root target=@adminvm\n", "sys-test\n", "delivered nothing", ExitFailure},
		{"syntax error", allow + "!! not a rule\n", "sys-test\n", "50-updates.policy:2", ExitFailure},
		// The fake UpdateVM delivers nothing: the update gets that far.
		{"allowed", allow, "sys-test\n", "delivered nothing", ExitFailure},
		{"no qrexec of ours", "", "", "delivered nothing", ExitFailure},
	} {
		tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
		if c.policy != "" {
			for name, data := range map[string]string{policy.DefaultDir + "/50-updates.policy": c.policy, policy.DefaultDomainsFile: c.domains} {
				if data == "" {
					continue
				}
				if err := os.MkdirAll(filepath.Dir(tr.config.Path(name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(tr.config.Path(name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		code := tr.run(t, "-y")
		called := len(tr.vm.calls) != 0
		if code != c.code || !strings.Contains(tr.stderr.String(), c.want) || called != (c.want == "delivered nothing") {
			t.Errorf("%s: exit %d, UpdateVM called: %t; want exit %d saying %q; stderr:\n%s", c.name, code, called, c.code, c.want, tr.stderr)
		}
	}
}

// A mistyped installroot in updates.conf, or a --root that does not exist,
// is an error naming where dom0's rpm database should be: rpm would make an
// empty one there, and the UpdateVM would find no updates for it. Nothing
// is sent, and nothing is made under the bad root, not even the log.
func TestRunNoRPMDatabase(t *testing.T) {
	noUpdates := func([]string, io.Writer, io.Writer) int { return 0 }
	typo := newTestRun(t, noUpdates)
	typo.config.InstallRoot = "/mnt/typo"
	missing := newTestRun(t, noUpdates)
	missing.config.Root = filepath.Join(missing.config.Root, "nonexistent")
	for name, tr := range map[string]*testRun{"installroot": typo, "root": missing} {
		for _, args := range [][]string{{"--check-only"}, {"--clean", "-y"}, {"--action=remove", "hello"}} {
			code := tr.run(t, args...)
			want := "no rpm database in " + tr.config.Path("/mnt/typo/var/lib/rpm")
			if name == "root" {
				want = "no rpm database in " + tr.config.Path("/var/lib/rpm")
			}
			if stderr := tr.stderr.String(); code != ExitFailure || !strings.Contains(stderr, want) || strings.Contains(stderr, "No updates") {
				t.Errorf("%s, %q: exit %d, want 1 saying %q; stderr:\n%s", name, args, code, want, stderr)
			}
		}
		if len(tr.vm.calls) != 0 || len(tr.tools.dnfArgs) != 0 {
			t.Errorf("%s: %d call(s) to the UpdateVM, dnf ran %d time(s); want none", name, len(tr.vm.calls), len(tr.tools.dnfArgs))
		}
	}
	if _, err := os.Lstat(typo.config.Path("/mnt")); !os.IsNotExist(err) {
		t.Errorf("something was made under the mistyped installroot (%v)", err)
	}
	if _, err := os.Lstat(missing.config.Root); !os.IsNotExist(err) {
		t.Errorf("the missing --root was made (%v)", err)
	}
	if log, err := os.ReadFile(typo.config.Path(dom0.LogPath)); err != nil || !strings.Contains(string(log), "no rpm database") {
		t.Errorf("the run under an existing root is not in its log: %v\n%s", err, log)
	}
}

// remove runs dnf in dom0 alone, and its failure says nothing about a
// cached repository it never touched.
func TestRunRemove(t *testing.T) {
	tr := newTestRun(t, nil)
	tr.tools.dnfExit = 1
	code := tr.run(t, "--action=remove", "hello")
	if code != ExitFailure || len(tr.vm.calls) != 0 || len(tr.tools.dnfArgs) != 1 {
		t.Fatalf("exit %d, %d call(s) to the UpdateVM, dnf ran %d time(s); want 1, none, once", code, len(tr.vm.calls), len(tr.tools.dnfArgs))
	}
	if stderr := tr.stderr.String(); !strings.Contains(stderr, "dnf remove in dom0 failed (exit 1)") || strings.Contains(stderr, "cached repository") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// Without -y dnf asks, and a stdin that is no terminal cannot answer: the
// failure says so and what to do, where dnf said it aborted (also in two
// writes). After another failure (no match), or with -y, that hint would
// be wrong.
func TestRunWithoutYes(t *testing.T) {
	asked := []string{"Is this ok [y/N]: Operation", " aborted.\n"}
	noMatch := []string{"Error: Unable to find a match: hello*\n"}
	for _, tc := range []struct {
		yes    bool
		output []string
		hint   bool
	}{
		{false, asked, true},
		{false, noMatch, false},
		{true, asked, false},
	} {
		tr := newTestRun(t, nil)
		tr.tools.dnfExit = 1
		tr.tools.dnfOutput = tc.output
		args := []string{"--action=remove", "hello"}
		if tc.yes {
			args = append(args, "-y")
		}
		code := tr.run(t, args...)
		stderr := tr.stderr.String()
		if hint := strings.Contains(stderr, "run again with -y"); code != ExitFailure || hint != tc.hint ||
			!strings.Contains(stderr, strings.Join(tc.output, "")) {
			t.Errorf("-y %t, dnf said %q: exit %d, hint to add -y: %t; stderr:\n%s", tc.yes, tc.output, code, hint, stderr)
		}
	}
}

// --clean empties both caches, also with --check-only (overview.md).
func TestRunCheckOnlyClean(t *testing.T) {
	var asked []string
	tr := newTestRun(t, func(argv []string, _, _ io.Writer) int {
		asked = argv
		return ExitUpdatesAvailable
	})
	if code := tr.run(t, "--check-only", "--clean"); code != ExitUpdatesAvailable {
		t.Fatalf("exit %d, want 100; stderr:\n%s", code, tr.stderr)
	}
	if !slices.Contains(asked, "--check-only") || !slices.Contains(asked, "--clean") {
		t.Errorf("the UpdateVM was asked %q, want --check-only --clean", asked)
	}
	// The cache is emptied before the sync writes to the UpdateVM's disk,
	// which the cache may have filled.
	if first := tr.vm.calls[0]; !slices.Equal(first[1:], []string{"--sync", "--clean"}) {
		t.Errorf("the UpdateVM's first call was %q, want --sync --clean", first)
	}
}

// --check-only's "no updates" is the UpdateVM's word alone, which dom0
// cannot check without a delivery (M1): the message says whose word it is.
func TestRunCheckOnlyNoUpdates(t *testing.T) {
	tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
	code := tr.run(t, "--check-only")
	if want := "==> sys-test reports no updates for dom0 (not verified: --check-only sends nothing to dom0"; code != ExitOK || !strings.Contains(tr.stderr.String(), want) {
		t.Errorf("exit %d, want 0 saying %q; stderr:\n%s", code, want, tr.stderr)
	}
}

// With --json, stdout is one JSON object, also for a query, whose listing
// then goes to stderr.
func TestRunJSONQuery(t *testing.T) {
	tr := newTestRun(t, func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, "hello.noarch 1.1-1 pedos-lab")
		return 0
	})
	if code := tr.run(t, "--json", "--action=list"); code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, tr.stderr)
	}
	rep := decodeOneReport(t, tr.stdout.String())
	if rep.Action != "list" || rep.Exit != 0 || !strings.Contains(tr.stderr.String(), "hello.noarch 1.1-1") {
		t.Errorf("report %+v; stderr:\n%s", rep, tr.stderr)
	}
}

// A query's listing on stdout is bounded as it is with --json: an UpdateVM
// must not fill dom0's disk through `pedos-dom0-update --action=list >FILE`.
func TestRunQueryListingIsBounded(t *testing.T) {
	line := strings.Repeat("x", 1023) + "\n"
	tr := newTestRun(t, func(_ []string, stdout, _ io.Writer) int {
		for range maxShownListingBytes/len(line) + 1024 {
			if _, err := io.WriteString(stdout, line); err != nil {
				return 1
			}
		}
		return 0
	})
	if code := tr.run(t, "--action=list"); code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, tr.stderr)
	}
	info, err := os.Stat(tr.stdout.Name())
	if err != nil {
		t.Fatal(err)
	}
	// The limit counts what is shown, each line's prefix "sys-test: " included.
	shownLines := maxShownListingBytes / (len("sys-test: ") + len(line))
	note := fmt.Sprintf("sys-test: [%d more bytes of output not shown: over %d]\n", (maxShownListingBytes/len(line)+1024-shownLines)*len(line), maxShownListingBytes)
	if info.Size() > maxShownListingBytes+int64(len(note)) || !strings.HasSuffix(tr.stdout.String(), note) {
		t.Errorf("stdout holds %d bytes, want at most about %d and the note %q at its end", info.Size(), maxShownListingBytes, note)
	}
}

// The download's output is bounded by maxLogBytes, stdout and stderr
// together: only a query's listing may be a repository's worth (a review
// found the download's taken for a listing, as both go to stderr).
func TestRunDownloadOutputIsBounded(t *testing.T) {
	line := strings.Repeat("x", 1023) + "\n"
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, stdout, stderr io.Writer) int {
		for i := range 3 * maxLogBytes / len(line) {
			if _, err := io.WriteString([]io.Writer{stdout, stderr}[i%2], line); err != nil {
				return 1
			}
		}
		deliver(t, tr.config, argv, 0, onePackage)
		return 0
	}
	if code := tr.run(t, "-y"); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	shown := tr.stderr.String()
	if len(shown) > maxLogBytes+4096 || !strings.Contains(shown, fmt.Sprintf("more bytes of output not shown: over %d]", maxLogBytes)) {
		t.Errorf("stderr holds %d bytes of the download's %d, want at most about %d and a note", len(shown), 3*maxLogBytes, maxLogBytes)
	}
}

// decodeOneReport requires out to be exactly one JSON report.
func decodeOneReport(t *testing.T, out string) Report {
	t.Helper()
	var rep Report
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not a JSON report (%v):\n%s", err, out)
	}
	if rest, _ := io.ReadAll(dec.Buffered()); strings.TrimSpace(string(rest)) != "" || dec.More() {
		t.Fatalf("stdout holds more than the JSON report:\n%s", out)
	}
	return rep
}

// Usage errors too give a JSON report and a log record; a log that cannot
// be written is a warning.
func TestConclude(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	o, err := ParseArgs([]string{"--json", "--nogpgcheck"})
	if !errors.Is(err, ErrUsage) || !o.JSON {
		t.Fatalf("ParseArgs: JSON %v, %v; want JSON and a usage error", o.JSON, err)
	}
	stdout, stderr := newOutput(t), newOutput(t)
	if code := Conclude(c, o, Report{Exit: ExitUsage}, err, stdout, stderr); code != ExitUsage {
		t.Errorf("Conclude = %d, want 2", code)
	}
	if rep := decodeOneReport(t, stdout.String()); rep.Exit != ExitUsage || !strings.Contains(rep.Message, "--nogpgcheck") {
		t.Errorf("report %+v", rep)
	}
	log, err := os.ReadFile(c.Path(dom0.LogPath))
	if err != nil || !strings.Contains(string(log), `"exit":2`) {
		t.Errorf("update log: %v\n%s", err, log)
	}
	// A directory where the log should be: AppendLog fails.
	blocked := dom0.DefaultConfig(t.TempDir())
	if err := os.MkdirAll(blocked.Path(dom0.LogPath), 0o755); err != nil {
		t.Fatal(err)
	}
	stderr = newOutput(t)
	Conclude(blocked, Options{}, Report{}, nil, io.Discard, stderr)
	if !strings.Contains(stderr.String(), "warning: this run is not in the update log") {
		t.Errorf("no warning for an unwritable log; stderr:\n%s", stderr)
	}
}

// Only root can update dom0: a user who tries is told so first, not left
// with a "permission denied" on a file (the tests run as root, who gets
// no such error: the errors are made here). A state directory on a
// read-only file system, or that is no directory, is said as such.
func TestLockErrors(t *testing.T) {
	path := "/var/lib/PedOS/state/update.lock"
	// Root who meets a permission error (an immutable lock file) is not
	// told to run as root.
	asRoot := func(advice string) string {
		if os.Geteuid() == 0 {
			return "taking the update lock: "
		}
		return advice
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&os.PathError{Op: "mkdir", Path: "/var/lib/PedOS/state", Err: syscall.EACCES}, asRoot("run pedos-dom0-update as root: only root can install packages in dom0 and write its update state (/var/lib/PedOS/state, mode 0700); there is no update group. It could not take the update lock: mkdir /var/lib/PedOS/state: permission denied")},
		{&os.PathError{Op: "open", Path: path, Err: syscall.EPERM}, asRoot("run pedos-dom0-update as root")},
		{&os.PathError{Op: "open", Path: path, Err: syscall.EISDIR}, "taking the update lock: open " + path + ": is a directory"},
		{&os.PathError{Op: "lock", Path: path, Err: syscall.EWOULDBLOCK}, "another update is running (" + path + " is locked)"},
		{&os.PathError{Op: "open", Path: path, Err: syscall.EROFS}, "dom0's update state directory /var/lib/PedOS/state is on a read-only file system"},
		{&os.PathError{Op: "mkdir", Path: "/var/lib/PedOS/state", Err: syscall.EEXIST}, "dom0's update state directory /var/lib/PedOS/state is not a directory"},
		{&os.PathError{Op: "mkdir", Path: "/var/lib/PedOS/state", Err: syscall.ENOTDIR}, "dom0's update state directory /var/lib/PedOS/state is not a directory"},
	} {
		if err := lockError(path, tc.err); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("lockError(%v) = %v, want %q", tc.err, err, tc.want)
		}
	}
	if lockError(path, nil) != nil {
		t.Error("lockError(nil) is an error")
	}
	// As the lock meets it: a state directory that is a link to nothing.
	c := dom0.DefaultConfig(t.TempDir())
	state := c.Path(dom0.StateDir)
	if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/state", state); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(c); err == nil || !strings.HasPrefix(err.Error(), "dom0's update state directory "+state+" is not a directory") {
		t.Errorf("Lock with a dangling link for the state directory: %v", err)
	}
}

// --clean leaves an empty repository that dom0's dnf can load, not one
// without repodata/ (on which every dnf that reads the cached repository
// fails until the next accepted delivery), also when nothing is delivered
// after it.
func TestRunCleanLeavesAValidRepository(t *testing.T) {
	for _, tool := range []string{"createrepo_c", "dnf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("dnf runs only as root")
	}
	tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
	if code := tr.run(t, "--check-only", "--clean"); code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, tr.stderr)
	}
	// dom0's dnf with the packaging's PedOS-cached.repo, moved below the
	// test's root.
	dir := t.TempDir()
	repo := fmt.Sprintf("[pedos-dom0-cached]\nname=cached\nbaseurl=file://%s\ngpgcheck=1\nmetadata_expire=0\nskip_if_unavailable=False\n",
		tr.config.Path(dom0.CachedRepoDir))
	for name, data := range map[string]string{"repos/PedOS-cached.repo": repo, "dnf.conf": "[main]\nplugins=False\n"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tools, err := dnftool.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tools.Close()
	var out strings.Builder
	code, err := tools.DNF(t.Context(), []string{"--installroot=" + filepath.Join(dir, "root"), "--config=" + filepath.Join(dir, "dnf.conf"),
		"--setopt=reposdir=" + filepath.Join(dir, "repos"), "--releasever=1", "--noplugins", "makecache"}, nil, &out, &out)
	if err != nil || code != 0 {
		t.Errorf("dnf makecache on the cached repository after --clean: exit %d, %v\n%s", code, err, out.String())
	}
}

// A run that delivers nothing leaves the last delivery's result in place
// (overview.md: state/ holds the last result), and does not take it for
// its own.
func TestRunKeepsTheLastResult(t *testing.T) {
	tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
	if err := os.MkdirAll(tr.config.Path(dom0.StateDir), 0o700); err != nil {
		t.Fatal(err)
	}
	last := onePackage
	last.Session = strings.Repeat("ab", dom0.SessionIDLength/2)
	if err := dom0.WriteResult(tr.config, last); err != nil {
		t.Fatal(err)
	}
	if code := tr.run(t, "-y"); code != ExitFailure || !strings.Contains(tr.stderr.String(), "delivered nothing") {
		t.Fatalf("exit %d, want 1 saying nothing was delivered; stderr:\n%s", code, tr.stderr)
	}
	// The last delivery's count is not this run's progress (lab audit).
	if strings.Contains(tr.stderr.String(), "verifying") {
		t.Errorf("a run that received nothing shows dom0 verifying; stderr:\n%s", tr.stderr)
	}
	if len(tr.tools.dnfArgs) != 0 {
		t.Errorf("dnf ran after a run that delivered nothing")
	}
	if res, err := ReadResult(tr.config, last.Session); err != nil || !res.Accepted {
		t.Errorf("the last delivery's result is gone: %+v, %v", res, err)
	}
}

// Every line the UpdateVM prints carries its name, so that a compromised
// UpdateVM cannot print lines that pass for dom0's own; dom0's lines do not.
func TestRunUpdateVMLinesMarked(t *testing.T) {
	forged := "==> dom0 checked the delivery from sys-test: 1 file(s), 666 bytes\n    verified: evil-1-1.noarch (signed by ABCD)\n"
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, stdout, stderr io.Writer) int {
		io.WriteString(stderr, forged)
		io.WriteString(stdout, "partial "+strings.Repeat("x", maxLineBytes))
		deliver(t, tr.config, argv, 0, onePackage)
		return 0
	}
	if code := tr.run(t, "-y"); code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, tr.stderr)
	}
	stderr := tr.stderr.String()
	for line := range strings.Lines(stderr) {
		dom0s := strings.HasPrefix(line, "==> ") || strings.HasPrefix(line, "    ")
		if strings.Contains(line, "evil") || strings.Contains(line, "666") || strings.Contains(line, "partial") || strings.Contains(line, "xxx") {
			if dom0s || !strings.HasPrefix(line, "sys-test: ") {
				t.Errorf("the UpdateVM's line %q is not marked as its own", line)
			}
		} else if strings.HasPrefix(line, "sys-test: ") {
			t.Errorf("dom0's line %q is marked as the UpdateVM's", line)
		}
	}
	if !strings.Contains(stderr, "\n    verified: hello-1.1-1.noarch") {
		t.Errorf("dom0's verdict is missing or marked:\n%s", stderr)
	}
}

// What failed in the UpdateVM is named: the check, the query or the
// download; a 125 from the download is its own call to dom0, since dom0's
// call reached the UpdateVM just before.
func TestRunUpdateVMFailures(t *testing.T) {
	for _, tc := range []struct {
		args []string
		exit int
		want string
	}{
		{[]string{"--action=info", "nosuchpkg"}, 1, "the query in sys-test failed (exit 1)"},
		{[]string{"--check-only"}, 1, "the check in sys-test failed (exit 1)"},
		{[]string{"-y"}, 1, "the download in sys-test failed (exit 1)"},
		{[]string{"--check-only"}, ExitQrexecFailure, "the check in sys-test: dom0's qrexec call to sys-test failed (exit 125: is sys-test running"},
		{[]string{"-y"}, ExitQrexecFailure, "the download in sys-test: sys-test could not reach dom0's PedOS.ReceiveUpdates (qrexec in sys-test failed, exit 125"},
		{[]string{"--action=list"}, ExitUpdatesAvailable, "the query in sys-test failed (exit 100)"},
		{[]string{"--check-only"}, ExitRefused, "the check in sys-test: refused (exit 126): by the qrexec policy of a PedOS/Qubes host, or sys-test could not run the command"},
		// The shell's answers: no such command, or one killed.
		{[]string{"--check-only"}, 127, "the check in sys-test failed (exit 127): pedos-download-dom0-updates is not installed there"},
		{[]string{"-y"}, 137, "the download in sys-test failed: its command was killed by signal 9 (exit 137)"},
	} {
		tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return tc.exit })
		code := tr.run(t, tc.args...)
		wantExit := tc.exit
		if tc.exit == ExitUpdatesAvailable || tc.exit > ExitRefused { // "updates available" from a query means nothing
			wantExit = ExitFailure
		}
		if stderr := tr.stderr.String(); code != wantExit || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "is sys-test running") != strings.Contains(tc.want, "running") {
			t.Errorf("%q, the UpdateVM exiting %d: exit %d, want %d saying %q; stderr:\n%s", tc.args, tc.exit, code, tc.exit, tc.want, stderr)
		}
	}
}

// The UpdateVM's command failing after dom0 accepted its delivery is not
// "refused by policy": the run says what happened, and installs nothing.
func TestRunUpdateVMFailsAfterDelivery(t *testing.T) {
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, onePackage)
		return ExitRefused
	}
	code := tr.run(t, "-y")
	// Not 126, which says dom0 refused before reading anything.
	if want := "dom0 accepted the delivery, but then the download in sys-test"; code != ExitFailure || !strings.Contains(tr.stderr.String(), want) || len(tr.tools.dnfArgs) != 0 {
		t.Errorf("exit %d, dnf ran %d times; want 1 saying %q and no dnf; stderr:\n%s", code, len(tr.tools.dnfArgs), want, tr.stderr)
	}
}

// The run's report, and so its record in the update log, lists what dnf
// installed and removed in dom0.
func TestRunReportsTheTransaction(t *testing.T) {
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, onePackage)
		return 0
	}
	tr.tools.installed = []repometa.NEVRA{{Name: "hello", EVR: rpmver.EVR{Version: "1.0", Release: "1"}, Arch: "noarch"}, {Name: "bash", EVR: rpmver.EVR{Version: "5", Release: "1"}, Arch: "x86_64"}}
	tr.tools.dnfLeaves = []repometa.NEVRA{{Name: "hello", EVR: rpmver.EVR{Version: "1.1", Release: "1"}, Arch: "noarch"}, {Name: "bash", EVR: rpmver.EVR{Version: "5", Release: "1"}, Arch: "x86_64"},
		{Name: "world", EVR: rpmver.EVR{Epoch: 2, Version: "1", Release: "1"}, Arch: "noarch"}}
	if code := tr.run(t, "--json", "-y"); code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, tr.stderr)
	}
	rep := decodeOneReport(t, tr.stdout.String())
	if !slices.Equal(rep.Installed, []string{"hello-1.1-1.noarch", "world-2:1-1.noarch"}) || !slices.Equal(rep.Removed, []string{"hello-1.0-1.noarch"}) {
		t.Errorf("installed %q, removed %q", rep.Installed, rep.Removed)
	}
	if log, err := os.ReadFile(tr.config.Path(dom0.LogPath)); err != nil || !strings.Contains(string(log), `"installed":["hello-1.1-1.noarch","world-2:1-1.noarch"]`) {
		t.Errorf("the update log does not list the transaction: %v\n%s", err, log)
	}
}

// SIGTERM while dnf runs in dom0: dnf is left to finish its transaction,
// and the run still lists what it changed and checks what it left out.
func TestRunInterruptedWhileDNFRuns(t *testing.T) {
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, onePackage)
		return 0
	}
	tr.tools.installed = []repometa.NEVRA{{Name: "hello", EVR: rpmver.EVR{Version: "1.0", Release: "1"}, Arch: "noarch"}}
	tr.tools.dnfLeaves = []repometa.NEVRA{{Name: "hello", EVR: rpmver.EVR{Version: "1.1", Release: "1"}, Arch: "noarch"}}
	tr.tools.duringDNF = interrupt
	o, err := ParseArgs([]string{"--json", "-y"})
	if err != nil {
		t.Fatal(err)
	}
	code := Run(ctx, o, Env{Config: tr.config, VM: tr.vm, Tools: tr.tools, Stdin: strings.NewReader(""),
		Stdout: tr.stdout, Stderr: tr.stderr, DownloadCommand: "pedos-download-dom0-updates"})
	rep := decodeOneReport(t, tr.stdout.String())
	if code != ExitOK || !slices.Equal(rep.Installed, []string{"hello-1.1-1.noarch"}) || strings.Contains(tr.stderr.String(), "will not list") {
		t.Errorf("exit %d, installed %q; want 0 and hello-1.1-1 listed; stderr:\n%s", code, rep.Installed, tr.stderr)
	}
}

// dom0's dnf enables the cached-repository configuration's enabled repositories and nothing
// else; with none, it does not run at all.
func TestCachedRepoIDs(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	if ids, err := cachedRepoIDs(c); err == nil {
		t.Errorf("no cached-repository configuration: %v, want an error", ids)
	}
	conf := c.Path(dom0.CachedRepoConfDir + "/PedOS-cached.repo")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("[pedos-dom0-cached]\nbaseurl=file:///a\n[spare]\nenabled=0\nbaseurl=file:///b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ids, err := cachedRepoIDs(c); err != nil || !slices.Equal(ids, []string{"pedos-dom0-cached"}) {
		t.Errorf("cachedRepoIDs = %v, %v; want [pedos-dom0-cached]", ids, err)
	}
}

// heldBack names a delivered update of an installed package that dnf did
// not install, and nothing else: not a new package, not one installed, not
// another package whose name begins with an installed one's.
func TestHeldBack(t *testing.T) {
	nevra := func(name, v string) repometa.NEVRA {
		return repometa.NEVRA{Name: name, EVR: rpmver.EVR{Version: v, Release: "1"}, Arch: "noarch"}
	}
	multilib := repometa.NEVRA{Name: "multi", EVR: rpmver.EVR{Version: "1.0", Release: "1"}, Arch: "i686"}
	after := []repometa.NEVRA{nevra("hello", "1.0"), nevra("libfoo", "2.0"), multilib}
	delivered := []dom0.PackageCheck{
		{OK: true, NEVRA: "hello-1.1-1.noarch"},    // skipped by dnf
		{OK: true, NEVRA: "libfoo-2.0-1.noarch"},   // installed
		{OK: true, NEVRA: "libbar-1.0-1.noarch"},   // new, not installed: dnf's business
		{OK: true, NEVRA: "hello-ng-2.0-1.noarch"}, // another package
		// noarch to an arch: an update too (dnf moves a package between them), skipped.
		{OK: true, NEVRA: "hello-1:1.2-1.x86_64"},
		{OK: true, NEVRA: "multi-1.1-1.x86_64"},    // another arch than the installed i686: dnf's business
		{OK: true, NEVRA: "libfoo-0:2.0-1.noarch"}, // installed: the header's explicit epoch 0
		{OK: false, NEVRA: "libfoo-2.1-1.noarch"},  // rejected: no verified update
	}
	if got := heldBack(delivered, after); !slices.Equal(got, []string{"hello-1.1-1.noarch", "hello-1:1.2-1.x86_64"}) {
		t.Errorf("held back %q, want hello-1.1-1.noarch and hello-1:1.2-1.x86_64", got)
	}
	// An arch to noarch, the other way (the red team's second case).
	x86 := repometa.NEVRA{Name: "hello", EVR: rpmver.EVR{Version: "1.3", Release: "1"}, Arch: "x86_64"}
	if got := heldBack([]dom0.PackageCheck{{OK: true, NEVRA: "hello-1.4-1.noarch"}}, []repometa.NEVRA{x86}); !slices.Equal(got, []string{"hello-1.4-1.noarch"}) {
		t.Errorf("x86_64 installed, noarch update left out: held back %q, want it named", got)
	}
}

// A delivered package that obsoletes an installed one excuses that one's
// update from dom0's withholding check, so dnf must have replaced it with
// the package: if the obsoleted package is still there, whether or not the
// obsoleting one was installed, it is named (M2). One whose obsoletes cover nothing installed, or only its
// own installed build, is dnf's business.
func TestHeldBackObsoleting(t *testing.T) {
	v := func(name, version, arch string) repometa.NEVRA {
		return repometa.NEVRA{Name: name, EVR: rpmver.EVR{Version: version, Release: "1"}, Arch: arch}
	}
	below := func(name, version string) []rpm.Obsolete {
		return []rpm.Obsolete{{Name: name, Flags: rpmver.SenseLess, Version: version}}
	}
	after := []repometa.NEVRA{v("hello", "1.0", "x86_64"), v("foo", "1.0", "noarch"), v("foo-ng", "2.0", "noarch"), v("bar", "3.0", "noarch")}
	delivered := []dom0.PackageCheck{
		{OK: true, NEVRA: "hello-ng-2.0-1.noarch", Obsoletes: below("hello", "2.0")},  // not installed
		{OK: true, NEVRA: "hello-old-2.0-1.noarch", Obsoletes: below("hello", "1.0")}, // covers no installed hello
		{OK: true, NEVRA: "other-2.0-1.noarch", Obsoletes: []rpm.Obsolete{{Name: "hellox"}}},
		{OK: true, NEVRA: "foo-ng-2.0-1.noarch", Obsoletes: below("foo", "2.0")}, // installed, foo left beside it
		{OK: true, NEVRA: "bar-3.0-1.noarch", Obsoletes: below("bar", "4.0")},    // its own name
	}
	if got := heldBack(delivered, after); !slices.Equal(got, []string{"hello-ng-2.0-1.noarch", "foo-ng-2.0-1.noarch"}) {
		t.Errorf("held back %q, want hello-ng-2.0-1.noarch and foo-ng-2.0-1.noarch", got)
	}
}

// An upgrade whose verified update dnf left out (an UpdateVM holding back
// the dependency it needs: dnf skips it and exits 0) fails the run and
// names the update (M2); dnf's exit 0 is not taken as done.
func TestRunHeldBackUpdate(t *testing.T) {
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, onePackage)
		return 0
	}
	old := []repometa.NEVRA{{Name: "hello", EVR: rpmver.EVR{Version: "1.0", Release: "1"}, Arch: "noarch"}}
	tr.tools.installed, tr.tools.dnfLeaves = old, old
	code := tr.run(t, "-y")
	want := "dnf upgrade in dom0 left out 1 verified update(s) of installed packages: hello-1.1-1.noarch."
	if code != ExitFailure || !strings.Contains(tr.stderr.String(), want) {
		t.Errorf("exit %d, want %d saying %q; stderr:\n%s", code, ExitFailure, want, tr.stderr)
	}
}

// The update lock admits one run at a time (F3), and a session that a
// killed run left is removed once the lock is taken.
func TestLockIsExclusive(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	left := filepath.Join(c.Path(dom0.StateDir), dom0.SessionFile)
	if err := os.MkdirAll(filepath.Dir(left), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unlock, err := Lock(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the session a killed run left is still there: %v", err)
	}
	if again, err := Lock(c); err == nil || !strings.Contains(err.Error(), "another update is running") {
		if err == nil {
			again()
		}
		t.Errorf("a second run while the first holds the lock: %v", err)
	}
	unlock()
	again, err := Lock(c)
	if err != nil {
		t.Fatalf("the lock after the first run released it: %v", err)
	}
	again()
}

// Names from dom0's own configuration and directory listings (--root, a
// .repo file's name) are shown escaped in dom0's messages and warnings: an
// ESC or a newline in them must neither act on the terminal nor start a
// line that passes for another message.
func TestRunEscapesConfigNames(t *testing.T) {
	const evil = "x\x1b[31m\nforged"
	const shown = `x\x1b[31m\x0aforged`
	repoFile := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
	dir := repoFile.config.Path("/etc/yum.repos.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, evil+".repo"), []byte("not an option\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := newTestRun(t, nil)
	root.config.Root = filepath.Join(root.config.Root, evil)
	for name, tr := range map[string]*testRun{"a .repo file": repoFile, "--root": root} {
		code := tr.run(t, "-y")
		stderr := tr.stderr.String()
		if code != ExitFailure || strings.ContainsAny(stderr, "\x1b") || strings.Contains(stderr, "\nforged") || !strings.Contains(stderr, shown) {
			t.Errorf("%s named %q: exit %d; stderr, want it escaped as %s:\n%q", name, evil, code, shown, stderr)
		}
	}
}

// With no network repository enabled (every .repo file disabled or one
// dnf skips, or switched off), the UpdateVM could resolve nothing: every
// action that asks it stops before it is asked (exit 1), naming the files.
func TestRunNeedsANetworkRepository(t *testing.T) {
	for _, c := range []struct {
		name, repo string // repo "": no .repo file
		switches   []string
		want       string
	}{
		{"disabled", "[vendor]\nenabled=0\n", nil, "(read: vendor.repo)"},
		{"skipped", "[vendor]\nbaseurl: http://mirror.invalid/\n", nil, "vendor.repo:2: not an option"},
		{"switched off", "[vendor]\n", []string{"--disablerepo=*", "--enablerepo=other"}, "with the --enablerepo/--disablerepo given): sys-test would have nothing to resolve updates from, so it was not asked; leave out or change the --disablerepo/--enablerepo given"},
		{"no file", "", nil, "(it has no .repo file)"},
	} {
		for _, args := range [][]string{{"-y"}, {"--check-only"}, {"--action=install", "hello"}, {"--action=list"}} {
			tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
			file := tr.config.Path("/etc/yum.repos.d/vendor.repo")
			var err error
			if c.repo == "" {
				err = os.Remove(file)
			} else {
				err = os.WriteFile(file, []byte(c.repo), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			code := tr.run(t, append(args, c.switches...)...)
			stderr := tr.stderr.String()
			if code != ExitFailure || len(tr.vm.calls) != 0 || !strings.Contains(stderr, "no network repository is enabled in "+tr.config.Path("/etc/yum.repos.d")) || !strings.Contains(stderr, c.want) {
				t.Errorf("%s, %q: exit %d, %d call(s) to the UpdateVM; want 1, none, saying %q; stderr:\n%s", c.name, args, code, len(tr.vm.calls), c.want, stderr)
			}
		}
	}
}

// A pinned metadata key that can sign nothing at dom0's trusted time
// (expired by the clock, or by the time floor saved in the freshness state
// when the clock is behind it) is named before the download: the receive
// would refuse that repository's metadata only afterwards. A current key is
// not.
func TestRunWarnsOfAnExpiredPin(t *testing.T) {
	for _, c := range []struct {
		name  string
		spec  testrepo.KeySpec
		floor time.Time // saved in the freshness state, if not zero
		warn  bool
	}{
		{"expired", testrepo.KeySpec{Name: "old", Created: time.Now().Add(-48 * time.Hour), Lifetime: 24 * time.Hour}, time.Time{}, true},
		{"expired by the time floor", testrepo.KeySpec{Name: "ahead", Created: time.Now().Add(-time.Hour), Lifetime: 24 * time.Hour}, time.Now().Add(48 * time.Hour), true},
		{"current", testrepo.KeySpec{Name: "new"}, time.Time{}, false},
		{"current at the time floor", testrepo.KeySpec{Name: "new"}, time.Now().Add(48 * time.Hour), false},
	} {
		tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 1 })
		if !c.floor.IsZero() {
			writeFiles(t, tr.config, map[string]string{
				repometa.StatePath: fmt.Sprintf(`{"time_floor": %q, "repos": {}}`, c.floor.UTC().Format(time.RFC3339))})
		}
		key, err := testrepo.NewSigner(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		dir := tr.config.Path("/etc/pedos/keys")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path, err := key.WritePublicKey(dir)
		if err != nil {
			t.Fatal(err)
		}
		tr.config.MetadataKeys["vendor"] = strings.TrimPrefix(path, tr.config.Root)
		tr.run(t, "-y")
		warned := strings.Contains(tr.stderr.String(), "repo.vendor.metadata_key "+tr.config.MetadataKeys["vendor"]+" has no key that can sign at ")
		if warned != c.warn || len(tr.vm.calls) == 0 {
			t.Errorf("%s key: warned %t, want %t (the run went on to the UpdateVM: %t); stderr:\n%s", c.name, warned, c.warn, len(tr.vm.calls) > 0, tr.stderr)
		}
	}
}

// A failed download's --json report (and so its log record) ends with what
// the UpdateVM said last on stderr, escaped and bounded, so that a script
// learns why: the last lines it wrote, also past what was shown; each cut
// to maxTailLineBytes at a character, and escaped whole. A run that went
// well carries none of it.
func TestRunReportKeepsUpdateVMStderrTail(t *testing.T) {
	long := "x" + strings.Repeat("é", 400) // 801 bytes: cut at a rune's start
	tr := newTestRun(t, func(_ []string, _, stderr io.Writer) int {
		// Over the 1 MiB shown: the reason comes after.
		for range 2 * maxLogBytes / 500 {
			fmt.Fprintf(stderr, "%s\n", strings.Repeat("n", 499))
		}
		for i := range 14 {
			fmt.Fprintf(stderr, "line %d\n", i)
		}
		fmt.Fprintf(stderr, "%s\n%s\nError: Unable to find a match: \x1b[2Jnosuchpkg", long, strings.Repeat("\x1b", 600))
		return 1
	})
	if code := tr.run(t, "--json", "-y", "nosuchpkg"); code != ExitFailure {
		t.Fatalf("exit %d; stderr:\n%s", code, tr.stderr)
	}
	got := decodeOneReport(t, tr.stdout.String()).UpdateVMStderr
	want := []string{"line 7", "line 8", "line 9", "line 10", "line 11", "line 12", "line 13",
		"x" + strings.Repeat("é", (maxTailLineBytes-1)/2), strings.Repeat(`\x1b`, maxTailLineBytes), `Error: Unable to find a match: \x1b[2Jnosuchpkg`}
	if !slices.Equal(got, want) {
		t.Errorf("updatevm_stderr %q, want %q", got, want)
	}
	// The update log keeps what fits in 2 KiB as JSON: the escaped ESCs take
	// 2.5 KiB, so only the last line.
	var record struct {
		Detail Report `json:"detail"`
	}
	log, err := os.ReadFile(tr.config.Path(dom0.LogPath))
	if err == nil {
		err = json.Unmarshal(log, &record)
	}
	if err != nil || !slices.Equal(record.Detail.UpdateVMStderr, want[len(want)-1:]) {
		t.Errorf("the update log's updatevm_stderr: %q (%v), want %q", record.Detail.UpdateVMStderr, err, want[len(want)-1:])
	}

	ok := newTestRun(t, nil)
	ok.vm.download = func(argv []string, _, stderr io.Writer) int {
		fmt.Fprintln(stderr, "Downloaded 1 package(s)")
		deliver(t, ok.config, argv, 0, onePackage)
		return 0
	}
	if code := ok.run(t, "--json", "-y", "--downloadonly"); code != ExitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, ok.stderr)
	}
	if rep := decodeOneReport(t, ok.stdout.String()); rep.UpdateVMStderr != nil {
		t.Errorf("a run that succeeded reports the UpdateVM's stderr %q", rep.UpdateVMStderr)
	}
}

// A delivery still being verified (a receive service holds its lock after the run that asked
// for it was killed) stops a run before the UpdateVM is asked anything, and stops --clean
// before it removes that service's build or empties the cached repository.
func TestRunWhileADeliveryIsVerified(t *testing.T) {
	defer func(d time.Duration) { serviceGoneAfter = d }(serviceGoneAfter)
	serviceGoneAfter = 200 * time.Millisecond // how long a held lock is waited for
	for _, args := range [][]string{{"-y"}, {"--check-only", "--clean"}, {"--clean", "-y"}} {
		asked := false
		tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { asked = true; return 0 })
		if err := os.MkdirAll(tr.config.Path(dom0.StateDir), 0o700); err != nil {
			t.Fatal(err)
		}
		build, err := dom0.NewRepoBuild(tr.config) // the running service's
		if err != nil {
			t.Fatal(err)
		}
		unlock, err := dom0.LockFile(filepath.Join(tr.config.Path(dom0.StateDir), dom0.ReceiveLockFile))
		if err != nil {
			t.Fatal(err)
		}
		code := tr.run(t, args...)
		unlock()
		_, buildErr := os.Stat(build.PackagesDir())
		if code != ExitFailure || asked || buildErr != nil || !strings.Contains(tr.stderr.String(), "pedos-receive-updates is still verifying a delivery") ||
			strings.Contains(tr.stderr.String(), "Emptying the cached repository") {
			t.Errorf("%q: exit %d, UpdateVM asked %t, the service's build: %v; want exit 1, nothing asked or emptied (nor said to be), the build kept, and why; stderr:\n%s",
				args, code, asked, buildErr, tr.stderr)
		}
	}
}

// A receive lock released an instant later (the previous run's service exiting after its
// result) is waited for, not taken for a delivery still being verified.
func TestRunWaitsForAReceiveThatEnds(t *testing.T) {
	tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return 0 })
	if err := os.MkdirAll(tr.config.Path(dom0.StateDir), 0o700); err != nil {
		t.Fatal(err)
	}
	unlock, err := dom0.LockFile(filepath.Join(tr.config.Path(dom0.StateDir), dom0.ReceiveLockFile))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, unlock)
	if code := tr.run(t, "--check-only", "--clean"); code != ExitOK || strings.Contains(tr.stderr.String(), "still verifying") {
		t.Errorf("exit %d, want 0: the lock was free 0.3 s later; stderr:\n%s", code, tr.stderr)
	}
}

// An upgrade named by a provide names its installed providers to dom0 too:
// dom0's withholding check matches package names and versions only, and
// would otherwise check no installed package (verify.md §2.6, M1). A name
// an installed package has is no provide, as for dnf: hello-compat, which
// provides hello, is not upgraded by upgrade hello.
func TestRunUpgradeByProvide(t *testing.T) {
	for _, c := range []struct {
		action, name string
		want         []string
	}{
		{"upgrade", "barcap", []string{"barcap", "libbar"}},
		{"install", "barcap", []string{"barcap"}},
		{"upgrade", "hello", []string{"hello"}},
		{"upgrade", "hell*", []string{"hell*"}},
	} {
		tr := newTestRun(t, nil)
		v1 := rpmver.EVR{Version: "1.0", Release: "1"}
		tr.tools.installed = []repometa.NEVRA{{Name: "hello", EVR: v1, Arch: "noarch"}, {Name: "hello-compat", EVR: v1, Arch: "noarch"}, {Name: "libbar", EVR: v1, Arch: "noarch"}}
		tr.tools.provides = map[string][]string{"barcap": {"libbar"}, "hello": {"hello", "hello-compat"}, "hell*": {"hello-compat"}}
		var named []string
		tr.vm.download = func(argv []string, _, _ io.Writer) int {
			s, err := dom0.ClaimSession(tr.config, sessionArg(argv), time.Now())
			if err != nil {
				t.Errorf("claiming the session: %v", err)
				return 1
			}
			named = s.Packages
			return 1 // nothing delivered: the run ends here
		}
		tr.run(t, "-y", "--action="+c.action, c.name)
		if !slices.Equal(named, c.want) {
			t.Errorf("--action=%s %s: the session names %q, want %q", c.action, c.name, named, c.want)
		}
	}
}

// TestReinstalledNamesDeliveredPackagesStillInstalled: a reinstall's record
// lists the verified delivered packages the user named that were installed
// before and after dnf, whether the verifier wrote the header's epoch 0 or
// not; a refused package, one dnf left uninstalled, or one nobody named (the
// UpdateVM's addition) is not listed.
func TestReinstalledNamesDeliveredPackagesStillInstalled(t *testing.T) {
	pkg := func(name string, epoch uint32) repometa.NEVRA {
		return repometa.NEVRA{Name: name, EVR: rpmver.EVR{Epoch: epoch, Version: "1.0", Release: "1"}, Arch: "noarch"}
	}
	installed := []repometa.NEVRA{pkg("hello", 0), pkg("zero", 0), pkg("ep", 2), pkg("bad", 0), pkg("unasked", 0)}
	delivered := []dom0.PackageCheck{
		{NEVRA: "hello-1.0-1.noarch", OK: true}, {NEVRA: "zero-0:1.0-1.noarch", OK: true},
		{NEVRA: "ep-2:1.0-1.noarch", OK: true}, {NEVRA: "bad-1.0-1.noarch"}, {NEVRA: "gone-1.0-1.noarch", OK: true},
		{NEVRA: "unasked-1.0-1.noarch", OK: true},
	}
	want := []string{"ep-2:1.0-1.noarch", "hello-1.0-1.noarch", "zero-1.0-1.noarch"}
	named := []string{"hello", "zero", "ep", "bad", "gone"}
	if got := reinstalled(delivered, append(installed, pkg("gone", 0)), installed, named); !slices.Equal(got, want) {
		t.Errorf("reinstalled: %v, want %v", got, want)
	}
	// Named by a file or a provide, which names no package: every verified one still installed.
	if got := reinstalled(delivered, installed, installed, []string{"/usr/bin/hello"}); len(got) != 4 || !slices.Contains(got, "unasked-1.0-1.noarch") {
		t.Errorf("reinstalled by a file's path: %v, want the four verified packages still installed", got)
	}
}

// A refusal after --clean does not claim the cached repository is
// unchanged: --clean emptied it before the download (overview.md: "--clean:
// empty the cached repository in dom0 ... first"), and a refused delivery
// publishes nothing.
func TestRunRefusedAfterCleanSaysTheCacheIsEmpty(t *testing.T) {
	tr := newTestRun(t, nil)
	tr.vm.download = func(argv []string, _, _ io.Writer) int {
		deliver(t, tr.config, argv, 0, dom0.Result{Error: "bad request", Findings: []dom0.Finding{{Kind: "bad-request", Error: true}}})
		return 0
	}
	if code := tr.run(t, "--clean", "-y"); code != ExitFailure {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, tr.stderr)
	}
	if stderr := tr.stderr.String(); !strings.Contains(stderr, "nothing was installed and the cached repository stays as --clean left it, empty") || strings.Contains(stderr, "unchanged") {
		t.Errorf("stderr does not say --clean left the cached repository empty:\n%s", stderr)
	}
}

// Where dom0's own qrexec policy allowed the UpdateVM's call before the
// download, a 126 at the delivery is pedos-receive-updates' refusal: the
// error names the rule that allowed the call instead of blaming the policy
// (overview.md: "125/126 qrexec failure / call refused, passed through").
func TestRunDeliveryRefusedDespiteOurPolicy(t *testing.T) {
	tr := newTestRun(t, func([]string, io.Writer, io.Writer) int { return ExitRefused })
	for name, data := range map[string]string{
		policy.DefaultDir + "/50-updates.policy": "PedOS.ReceiveUpdates * sys-test dom0 allow\n",
		policy.DefaultDomainsFile:                "sys-test\n",
	} {
		if err := os.MkdirAll(filepath.Dir(tr.config.Path(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(tr.config.Path(name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code := tr.run(t, "-y")
	stderr := tr.stderr.String()
	if want := "dom0 refused the delivery from sys-test (126) before reading it: dom0's qrexec policy lets sys-test call PedOS.ReceiveUpdates ("; code != ExitRefused || !strings.Contains(stderr, want) ||
		!strings.Contains(stderr, "50-updates.policy:1, checked before the download), so pedos-receive-updates refused the call") {
		t.Errorf("exit %d, want 126 naming the rule that allowed the call; stderr:\n%s", code, stderr)
	}
}
