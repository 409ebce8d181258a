package dom0

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/qfile"
	"pedos.dev/updates/internal/repometa"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/rpmver"
	"pedos.dev/updates/internal/sandbox"
)

// StagingDir holds one private directory per delivery, written only by the
// sandboxed unpacker; ScratchDir holds dom0's own temporary files of a
// delivery (the tools' private HOME, the rpmkeys database). Both are emptied
// when a delivery starts, so a killed one leaves nothing for long (F1).
const (
	StagingDir = "/var/lib/PedOS/staging"
	ScratchDir = "/var/lib/PedOS/scratch"
)

// Receiver is the PedOS.ReceiveUpdates service (overview.md step 5): it
// takes one delivery from the UpdateVM and either publishes it as the new
// cached repository, or leaves everything as it was.
type Receiver struct {
	Config Config
	// Unpacker is the path of qfile-dom0-unpacker.
	Unpacker string
	// Log is the service's stderr, which qrexec sends to dom0's log and
	// never to the caller.
	Log io.Writer
	// BuildTime is when this program was built: a time floor no clock can
	// lower (verify.md §2 step 4).
	BuildTime time.Time
	Now       func() time.Time
}

// ReceiveLockFile, in StateDir, is held by the receive service from before
// it claims a session until its result is written: one delivery at a time
// (F3), and a claimed session with the lock free and no result is one whose
// service died (the front end relies on it).
const ReceiveLockFile = "receive.lock"

// ErrRefused marks a call refused before reading any input (C1, C2).
var ErrRefused = errors.New("delivery refused")

// Serve handles one call. caller is QREXEC_REMOTE_DOMAIN, set by dom0's
// qrexec; untrustedSession is the service argument, chosen by the caller.
// stdout carries only the unpacker's status (qfile.md). On a refusal
// nothing is read from stdin; otherwise a result is written for the front
// end whatever happens.
func (r *Receiver) Serve(ctx context.Context, caller, untrustedSession string, stdin io.Reader, stdout io.Writer) error {
	c := r.Config
	// Only the UpdateVM delivers, whatever the policy allowed (C1; qrexec.md: defence in depth).
	if caller != c.UpdateVM {
		return fmt.Errorf("%w: domain %s called PedOS.ReceiveUpdates, but only the UpdateVM %s may deliver updates", ErrRefused, Loggable([]byte(caller)), c.UpdateVM)
	}
	// One delivery at a time: a second would race the first's staging and publish (F3).
	unlock, err := LockFile(filepath.Join(c.Path(StateDir), ReceiveLockFile))
	if errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("%w: from %s: another delivery is being processed: %v", ErrRefused, caller, err)
	}
	if err != nil {
		return fmt.Errorf("%w: from %s: no session can be claimed: %v", ErrRefused, caller, err)
	}
	defer unlock()
	session, err := ClaimSession(c, untrustedSession, r.Now())
	if err != nil {
		return fmt.Errorf("%w: from %s: %v", ErrRefused, caller, err)
	}
	// Packages is [] rather than null in the JSON when none was verified:
	// scripts iterate over it (the front end's --json passes it on).
	res := Result{Session: session.ID, Caller: caller, Started: r.Now().UTC(), Packages: []PackageCheck{}}
	err = r.receive(ctx, session, stdin, stdout, &res)
	res.Finished = r.Now().UTC()
	res.Accepted = err == nil
	if err != nil {
		res.Error = err.Error()
	}
	if lerr := AppendLog(c, LogRecord{Program: "pedos-receive-updates", Session: session.ID, Event: "delivery", Detail: res}); lerr != nil {
		fmt.Fprintf(r.Log, "warning: the delivery is not in %s: %v\n", LogPath, lerr)
	}
	if werr := WriteResult(c, res); werr != nil {
		// One line in the journal, whether or not the delivery failed too.
		werr = fmt.Errorf("the result for the front end could not be written: %w", werr)
		if err != nil {
			return fmt.Errorf("%w; %w", err, werr)
		}
		return werr
	}
	return err
}

// receive runs the pipeline: unpack in the sandbox, verify every package
// and the repository metadata, then publish. Any failure leaves the cached
// repository and the freshness state as they were (P11).
func (r *Receiver) receive(ctx context.Context, s Session, stdin io.Reader, stdout io.Writer, res *Result) (err error) {
	c := r.Config
	// Serve holds ReceiveLockFile: a late delivery of an abandoned session
	// never shares the staging and build directories with the current one.
	// Everything must be done by the session's deadline: the front end
	// stops waiting then, and must not see a repository appear later.
	ctx, cancel := context.WithDeadline(ctx, s.Deadline)
	defer cancel()
	defer func() {
		// A tool the deadline killed fails in its own words ("exit -1").
		if err != nil && ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("dom0's checks of the delivery did not finish before the session's deadline (receive_timeout in %s; S11, C7): %w", ConfigPath, err)
		}
	}()
	scratch := c.Path(ScratchDir)
	if err := os.RemoveAll(scratch); err != nil {
		return err
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	tools, err := pkgtool.NewTools(scratch)
	if err != nil {
		return err
	}
	defer tools.Close()
	staging, err := r.makeStaging(s.ID)
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	state, err := repometa.Load(c.Root, r.BuildTime, r.Now())
	if err != nil {
		return err
	}
	build, err := NewRepoBuild(c)
	if err != nil {
		return err
	}
	defer build.Discard()
	checks, err := r.startChecks(ctx, staging, build, state.TimeFloor(nil))
	if err != nil {
		return err
	}
	defer checks.wait()
	if err := r.unpack(ctx, staging, s.Deadline.Sub(r.Now()), stdin, stdout, checks.hint); err != nil {
		return err
	}
	packages, metadata, err := classify(staging, c.MaxFiles)
	if err != nil {
		return err
	}
	received, err := checks.finish(packages, res)
	if err != nil {
		return err
	}
	// createrepo_c reads the canonical files, all accepted by the native
	// verifier, while rpmkeys reads them too and the freshness check judges
	// the batch: none writes what another reads, and the build is published
	// only if all three succeed. (createrepo_c parses no more than rpmkeys.)
	createRepoCtx, stopCreateRepo := context.WithCancel(ctx)
	defer stopCreateRepo()
	repoWritten := make(chan error, 1)
	go func() { repoWritten <- tools.CreateRepo(createRepoCtx, build.Dir) }()
	err = checks.crossCheck(ctx, res)
	var verdict *repometa.Verdict
	if err == nil {
		verdict, err = r.checkFreshness(ctx, tools, s, state, staging, metadata, received, res)
		report(res, verdict)
	}
	if err != nil {
		stopCreateRepo()
	}
	if repoErr := <-repoWritten; err == nil {
		err = repoErr
		if ctx.Err() == nil { // killed at the deadline, it ran out of time, not of room
			err = onFullDisk(repoErr, filepath.Dir(build.Dir))
		}
	}
	if err != nil {
		return err
	}
	if err := build.Publish(c, s.Deadline, r.Log); err != nil {
		return err
	}
	// The state moves forward only once the batch is published: a crash
	// before this line leaves the old high-water marks, which the same
	// metadata still passes next time (F1, F4). For the same reason a state
	// that cannot be saved now is a warning: the batch is published and the
	// result must say so.
	if err := state.Commit(verdict); err != nil {
		fmt.Fprintf(r.Log, "warning: the delivery is published, but the freshness state was not saved (the next delivery is judged against the previous one): %v\n", err)
	}
	return nil
}

// makeStaging creates the delivery's private directory, owned by the
// unpacker's user so that it can write nothing else (qfile.md).
func (r *Receiver) makeStaging(session string) (string, error) {
	uid, gid, err := sandbox.ResolveUser(r.Config.UnpackerUser)
	if err != nil {
		return "", fmt.Errorf("%s: unpacker_user: %w", ConfigPath, err)
	}
	parent := r.Config.Path(StagingDir)
	if err := os.MkdirAll(parent, 0o711); err != nil {
		return "", err
	}
	// Only the holder of the claimed session gets here, so whatever is in
	// the parent was left by a receive that was killed (F1). The parent
	// itself stays: it may be a file system of its own (S13).
	if err := removeEntries(parent, ""); err != nil {
		return "", err
	}
	dir := filepath.Join(parent, session)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// onFullDisk adds to a tool's failure how much room the file system of dir
// has: createrepo_c says no more than "gzclose(): file operation error",
// which reads as the tool's fault or the packages', and it removes what it
// wrote before it exits, so that the disk may no longer look full.
func onFullDisk(err error, dir string) error {
	free, statErr := FreeBytes(dir)
	switch {
	case err == nil || statErr != nil:
		return err
	case free < MinFreeBytes:
		return fmt.Errorf("%w (the file system of %s has %d bytes free: dom0's disk is full, the likely cause; free space there and run again)", err, dir, free)
	}
	return fmt.Errorf("%w (the file system of %s has %d MiB free: if the tool ran out of space, free more there)", err, dir, free>>20)
}

// MinFreeBytes is the least room a delivery starts with in dom0's state
// directory (its session, result and freshness files); a file system with
// less is said to be full when a tool fails on it.
const MinFreeBytes = 1 << 20

// FreeBytes is the space left to an unprivileged writer on dir's file system.
func FreeBytes(dir string) (uint64, error) {
	var fs unix.Statfs_t
	err := unix.Statfs(dir, &fs)
	return fs.Bavail * uint64(fs.Frsize), err
}

// deliveryLimit is the most a delivery may hold: maxBytes, and 45 % of the
// free space in each of dirs, as each received byte takes room twice,
// staged and then canonical in the build beside the cached repository (S8,
// S13; one file system unless the staging directory is mounted apart).
// limitedBy is the directory whose free space set the limit, if one did.
func deliveryLimit(maxBytes int64, dirs ...string) (limit int64, limitedBy string, err error) {
	limit = maxBytes
	for _, dir := range dirs {
		free, err := FreeBytes(dir)
		if err != nil {
			return 0, "", fmt.Errorf("free space for %s: %w", dir, err)
		}
		if room := int64(free / 100 * 45); room < limit {
			limit, limitedBy = room, dir
		}
	}
	return limit, limitedBy, nil
}

// legalEOFExit is the unpacker's exit status for qfile.md's "legal EOF"
// (31415926, which does not fit an exit status): the stream ended inside a
// name or a file.
const legalEOFExit = 255

// unpack runs the sandboxed unpacker on the stream (regular files only,
// limits from updates.conf). Its stdout is ours: the status is all the
// UpdateVM ever reads from dom0.
func (r *Receiver) unpack(ctx context.Context, staging string, timeout time.Duration, stdin io.Reader, stdout io.Writer, hint func(untrustedName string)) error {
	c := r.Config
	if timeout <= 0 {
		return errors.New("the session expired before the delivery started")
	}
	// --no-sync waives qfile.md's last receiver rule (sync the target file
	// system before reporting success): the staged files are only read,
	// copied into the build and deleted, and the build is synced before it
	// is published (F4), so syncing them would write every byte for nothing.
	// -v names each file on stderr once it is complete, so that it can be
	// verified while the rest of the stream arrives (packageChecks).
	// --timeout is at least a second: 0s would be a usage error.
	args := []string{c.UnpackerUser, staging, "--only-regular-files", "--no-sync", "-v",
		"--timeout", max(min(timeout, c.ReceiveTimeout).Round(time.Second), time.Second).String()}
	buildParent := filepath.Dir(c.Path(CachedRepoDir))
	maxBytes, limitedBy, err := deliveryLimit(c.MaxBytes, staging, buildParent)
	if err != nil {
		return err
	}
	if maxBytes <= 0 { // the unpacker refuses a limit of 0, the reference's "unlimited"
		return fmt.Errorf("no room for a delivery in %s: %w", limitedBy, syscall.ENOSPC)
	}
	env := []string{
		"PATH=/usr/bin:/bin",
		"UPDATES_MAX_BYTES=" + strconv.FormatInt(maxBytes, 10),
		"UPDATES_MAX_FILES=" + strconv.FormatInt(c.MaxFiles, 10),
	}
	stderr, stderrW := io.Pipe()
	defer stderrW.Close()
	start := func(ownPIDNamespace bool) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, r.Unpacker, args...)
		cmd.Env = env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderrW
		// The unpacker cannot start processes, so nothing holds its stderr
		// once it exited; WaitDelay only bounds the wait should that ever
		// be wrong.
		cmd.WaitDelay = time.Second
		if ownPIDNamespace {
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		}
		return cmd, cmd.Start()
	}
	// As root the unpacker is pid 1 of a namespace of its own: when it
	// exits, the kernel kills anything a compromised unpacker forked. A
	// service manager may forbid that (no CAP_SYS_ADMIN, RestrictNamespaces,
	// as in our unit); then the unpacker runs without it, and its seccomp
	// filter, which refuses to start processes, is what stops a fork.
	cmd, err := start(os.Geteuid() == 0)
	if errors.Is(err, syscall.EPERM) && os.Geteuid() == 0 {
		fmt.Fprintf(r.Log, "note: the unpacker runs without a pid namespace of its own (%v); its seccomp filter still forbids it to start processes\n", err)
		cmd, err = start(false)
	}
	if err != nil {
		return fmt.Errorf("running the unpacker: %w", err)
	}
	var reader sync.WaitGroup
	var lastWords string // the unpacker's last line but a hint: why it refused
	reader.Go(func() { lastWords = r.readHints(stderr, hint) })
	err = cmd.Wait()
	stderrW.Close()
	reader.Wait()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("the delivery from %s did not finish before the session's deadline (receive_timeout in %s; S11, C7): %w", c.UpdateVM, ConfigPath, ctx.Err())
	case errors.As(err, &exit) && exit.ExitCode() == legalEOFExit:
		return errors.New("the unpacker refused the stream: it was truncated, ending inside a file or a name (S6)")
	case errors.As(err, &exit) && exit.ExitCode() == int(syscall.EDQUOT):
		// Which limit, so that the administrator raises the right one.
		return fmt.Errorf("the unpacker refused the stream: over a limit (EDQUOT): at most %d files (max_files) and %d bytes, the smaller of max_bytes (%d) and 45 %% of the free space in %s and in %s",
			c.MaxFiles, maxBytes, c.MaxBytes, staging, buildParent)
	case errors.As(err, &exit) && exit.ExitCode() == int(syscall.ENOSPC):
		// dom0's own disk, not the stream: said as such (the limit leaves
		// room, but something else may have filled the file system since).
		return fmt.Errorf("dom0's disk is full: the staging directory %s ran out of space during the transfer (ENOSPC); free space there and run again", staging)
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		// Which rule a name broke, say, without the name (nameless).
		errno := syscall.Errno(exit.ExitCode())
		return fmt.Errorf("the unpacker refused the stream: %s (%s); it said: %s", qfile.RefusalMeaning(errno), unix.ErrnoName(errno), cmp.Or(nameless(lastWords), "nothing"))
	case errors.As(err, &exit):
		return fmt.Errorf("the unpacker was killed (%s) while reading the stream from %s", exit.ProcessState, c.UpdateVM)
	}
	if err != nil {
		return fmt.Errorf("running the unpacker: %w", err)
	}
	return nil
}

// readHints passes on the name of each file the unpacker reports complete
// and copies its other lines to the log, until stderr is closed. It
// returns the last of those lines (loggable, without the program's name).
func (r *Receiver) readHints(stderr io.Reader, hint func(untrustedName string)) (last string) {
	// The unpacker's own lines are few and short: after one too long to
	// scan, or more than maxUnpackerLogLines others, the rest is drained,
	// not logged (a compromised unpacker must not flood dom0's log).
	const maxUnpackerLogLines = 100
	lines, logged := bufio.NewScanner(stderr), 0
	for lines.Scan() {
		if untrustedName, ok := receivedName(lines.Bytes()); ok {
			hint(untrustedName)
		} else if logged++; logged <= maxUnpackerLogLines {
			last = Loggable(lines.Bytes())
			fmt.Fprintf(r.Log, "%s\n", last)
		} else if logged == maxUnpackerLogLines+1 {
			fmt.Fprintf(r.Log, "qfile-dom0-unpacker: more than %d lines of output; the rest is not logged\n", maxUnpackerLogLines)
		}
	}
	if lines.Err() != nil {
		fmt.Fprintln(r.Log, "qfile-dom0-unpacker: a line of its output was too long; the rest is not logged")
	}
	_, _ = io.Copy(io.Discard, stderr)
	return strings.TrimPrefix(last, "qfile-dom0-unpacker: ")
}

// Loggable is line as it is if it is printable text, else quoted: a
// compromised unpacker must not put terminal escapes or fake lines into
// dom0's log.
func Loggable(line []byte) string {
	if utf8.Valid(line) && !bytes.ContainsFunc(line, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return string(line)
	}
	return strconv.Quote(string(line))
}

// quotedName is a name as the unpacker quotes it (%q).
var quotedName = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// nameless is a line of the unpacker's fit for the result the front end
// shows: the names it quotes replaced, cut to 200 bytes. A name, valid or
// not, is the UpdateVM's text ("Updates verified OK. Now run: …"), and the
// unpacker reads the untrusted stream (verify.md §1: no untrusted name).
func nameless(line string) string {
	line = quotedName.ReplaceAllString(line, `"…"`)
	if len(line) > 200 {
		line = strings.ToValidUTF8(line[:200], "") + "…"
	}
	return line
}

// receivedName is NAME in the line the unpacker's -v writes for each file
// it completed, `qfile-dom0-unpacker: received "NAME" (N bytes)`. The line
// is untrusted: the name is only a hint, checked as a package file name
// before it is used (packageChecks.hint).
func receivedName(line []byte) (untrustedName string, ok bool) {
	quoted, ok := bytes.CutPrefix(line, []byte("qfile-dom0-unpacker: received "))
	end := bytes.LastIndex(quoted, []byte(" ("))
	// Only the double-quoted form the unpacker writes (%q): strconv.Unquote
	// also takes `raw` and 'c' literals, even an empty ''.
	if !ok || end < 0 || quoted[0] != '"' {
		return "", false
	}
	untrustedName, err := strconv.Unquote(string(quoted[:end]))
	return untrustedName, err == nil
}

// classify sorts the staged files into packages and repository metadata.
// A file that is neither refuses the batch; its untrusted name is not
// repeated (verify.md §1).
func classify(staging string, maxFiles int64) (packages []string, metadata map[string]map[repometa.FileKind]string, err error) {
	entries, err := os.ReadDir(staging)
	if err != nil {
		return nil, nil, err
	}
	// The unpacker was given the limit; dom0 does not rely on it (S8).
	if int64(len(entries)) > maxFiles {
		return nil, nil, fmt.Errorf("the delivery holds %d files, more than max_files (%d), which the unpacker should have refused (S8)", len(entries), maxFiles)
	}
	metadata = map[string]map[repometa.FileKind]string{}
	for i, e := range entries {
		// The unpacker ran with --only-regular-files; dom0 checks again (S4).
		if !e.Type().IsRegular() {
			return nil, nil, errors.New("the delivery holds something other than a regular file")
		}
		kind, repo, err := repometa.Classify(e.Name())
		if err != nil {
			return nil, nil, fmt.Errorf("the delivery holds a file whose name is neither a package nor repository metadata (%d of %d, by name)", i+1, len(entries))
		}
		if kind == repometa.FilePackage {
			packages = append(packages, e.Name())
			continue
		}
		if metadata[repo] == nil {
			metadata[repo] = map[repometa.FileKind]string{}
		}
		metadata[repo][kind] = e.Name()
	}
	sort.Strings(packages)
	return packages, metadata, nil
}

// openStaged opens a staged file (mode O_RDONLY or O_RDWR) without
// following a link (the unpacker is confined, but dom0 does not rely on it).
// It must be a regular file whose only name is this one, looked up again
// after the open: the unpacker never makes hard links, and a file of dom0's
// linked in keeps its own name, so it can neither hide behind a staged name
// (discardStaged empties the file) nor be copied into the build under
// several names. (Checking the descriptor alone would not do: the link can
// be removed between the open and the check, and made again after it.)
func openStaged(staging, name string, mode int) (*os.File, error) {
	path := filepath.Join(staging, name)
	fd, err := unix.Open(path, mode|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var opened, named unix.Stat_t
	if unix.Fstat(fd, &opened) != nil || unix.Lstat(path, &named) != nil || opened.Mode&unix.S_IFMT != unix.S_IFREG ||
		named.Dev != opened.Dev || named.Ino != opened.Ino || named.Nlink != 1 {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: not a regular file with a single name", name)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// packageChecks verifies the staged packages on every CPU, each once,
// writing each one's canonical form into the new repository (verify.md §1):
// those the unpacker reports complete while the rest of the stream
// arrives, then, once it has ended, those it did not report. Its reports
// only decide when a file is read: the canonical copy is written from the
// very bytes verified, so a staged file changed later cannot matter, and
// finish accepts the batch only if the staging directory, listed after
// the unpacker reported success, holds exactly the packages verified.
type packageChecks struct {
	r *Receiver
	// rpmkeys (its key database is in ScratchDir) is made while the stream
	// arrives; it, its warnings and its error are set when keysReady closes.
	rpmkeys     *pkgtool.RPMKeys
	keyWarnings []error
	keysErr     error
	keysReady   chan struct{}
	build       RepoBuild
	canonical   []string // the canonical files, in the order of the result's packages, once finish accepts them
	queue       chan string
	// hinted is used by hint alone until the unpacker is done, then by finish.
	hinted map[string]bool
	total  atomic.Int64 // for the progress: packages known so far
	// unread is what is left of max_bytes for all the packages read: dom0
	// does not rely on the unpacker to have kept the limit (S8), e.g. with
	// sparse files that cost it no disk but would cost the build real bytes.
	unread   atomic.Int64
	workers  sync.WaitGroup
	waitOnce sync.Once
	mu       sync.Mutex
	results  map[string]packageResult
}

type packageResult struct {
	check PackageCheck // OK, or Rejected with the reason
	pkg   repometa.ReceivedPackage
	err   error // why it was rejected
}

// maxVerifyWorkers caps the verification workers: before any signature is
// checked each may hold two headers of up to 32 MiB (verify.md §1.1); with
// the garbage of reading them, 120 MiB of RSS for one worker and 370 MiB
// for four (measured), so dom0's memory must not grow with its number of CPUs.
const maxVerifyWorkers = 4

// startChecks loads dom0's keyring for both verifiers and starts one
// worker per CPU, up to maxVerifyWorkers (verification is hashing). wait must be called.
func (r *Receiver) startChecks(ctx context.Context, staging string, build RepoBuild, floor time.Time) (*packageChecks, error) {
	keyring, warnings, err := rpm.LoadKeyring(r.Config.Path(r.Config.KeyringDir), floor)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintf(r.Log, "warning: %v\n", w)
	}
	verifier := &rpm.Verifier{Keyring: keyring, Now: floor}
	p := &packageChecks{r: r, build: build, queue: make(chan string, 1024), keysReady: make(chan struct{}),
		hinted: map[string]bool{}, results: map[string]packageResult{}}
	// The key import (rpm and its database: tens of milliseconds) is only
	// needed by finish; it runs while the stream arrives.
	go func() {
		defer close(p.keysReady)
		p.rpmkeys, p.keyWarnings, p.keysErr = pkgtool.NewRPMKeys(ctx, r.Config.Path(ScratchDir), keyring.Files())
	}()
	p.unread.Store(r.Config.MaxBytes)
	for range min(runtime.NumCPU(), maxVerifyWorkers) {
		p.workers.Go(func() {
			for name := range p.queue {
				check, pkg, err := r.verifyOne(verifier, staging, name, filepath.Join(build.PackagesDir(), name), &p.unread)
				if err != nil {
					check.reject(err)
				}
				p.mu.Lock()
				p.results[name] = packageResult{check, pkg, err}
				done := len(p.results)
				// Under the lock, so that the count never goes back.
				writeProgress(r.Config, Progress{Session: filepath.Base(staging), Done: done, Total: max(done, int(p.total.Load()))})
				p.mu.Unlock()
			}
		})
	}
	return p, nil
}

// hint queues a package the unpacker says it completed, once. At most
// max_files names are taken (the unpacker creates no more files), and none
// while the workers are behind: finish queues whatever was not.
func (p *packageChecks) hint(untrustedName string) {
	kind, _, err := repometa.Classify(untrustedName)
	if err != nil || kind != repometa.FilePackage || p.hinted[untrustedName] || int64(len(p.hinted)) >= p.r.Config.MaxFiles {
		return
	}
	select {
	case p.queue <- untrustedName:
		p.hinted[untrustedName] = true
		p.total.Add(1)
	default:
	}
}

// wait lets the workers finish what is queued; nothing can be queued after.
func (p *packageChecks) wait() {
	p.waitOnce.Do(func() {
		close(p.queue)
		p.workers.Wait()
		<-p.keysReady
		// Logged whatever becomes of the batch, as before the import ran
		// in the background; the unpacker's stderr is done with the log.
		for _, w := range p.keyWarnings {
			fmt.Fprintf(p.r.Log, "warning: %v\n", w)
		}
	})
}

// finish verifies the staged packages (names, sorted) that no hint named
// and requires that every package verified is among them. One failure
// fails the batch.
func (p *packageChecks) finish(names []string, res *Result) ([]repometa.ReceivedPackage, error) {
	p.total.Store(int64(len(names)))
	for _, name := range names {
		if !p.hinted[name] {
			p.queue <- name
		}
	}
	p.wait()
	// Every staged package has a result now; any other result is of a file
	// the unpacker named but did not leave.
	if len(p.results) != len(names) {
		return nil, fmt.Errorf("the unpacker named %d package(s) it did not leave in the staging directory", len(p.results)-len(names))
	}
	// A copy dom0 could not write for want of space is dom0's fault, not
	// the package's: said as such, with no verdicts that would blame them.
	for _, name := range names {
		if err := p.results[name].err; errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return nil, fmt.Errorf("dom0's disk is full: no space left in %s for the verified copies of the packages (%w); free space there and run again", filepath.Dir(p.build.Dir), err)
		}
	}
	var received []repometa.ReceivedPackage
	canonical := make([]string, len(names))
	for i, name := range names {
		out := p.results[name]
		canonical[i] = filepath.Join(p.build.PackagesDir(), name)
		res.Bytes += out.check.Size
		res.Packages = append(res.Packages, out.check)
		if out.check.OK {
			received = append(received, out.pkg)
		}
	}
	if len(received) < len(names) {
		return nil, packagesRejected(len(names)-len(received), len(names))
	}
	p.canonical = canonical
	return received, nil
}

// crossCheck has rpmkeys check every canonical file finish accepted
// (verify.md §1), one run per CPU. One refusal fails the batch.
func (p *packageChecks) crossCheck(ctx context.Context, res *Result) error {
	if p.keysErr != nil {
		return p.keysErr
	}
	defer p.rpmkeys.Close() // its database, before the scratch directory goes
	verdicts := p.rpmkeys.CheckParallel(ctx, p.canonical, runtime.NumCPU())
	// rpmkeys killed at the deadline has said nothing about the packages:
	// that is no disagreement (a security error) between the verifiers.
	if ctx.Err() != nil {
		return fmt.Errorf("the rpmkeys cross-check did not finish before the session's deadline (receive_timeout in %s): %w", ConfigPath, ctx.Err())
	}
	rejected := 0
	for i, file := range p.canonical {
		if err := pkgtool.Agree(verdicts, file); err != nil {
			res.Packages[i].reject(err)
			rejected++
		}
	}
	if rejected > 0 {
		return packagesRejected(rejected, len(p.canonical))
	}
	return nil
}

// packagesRejected is the batch's error when packages failed; each
// package's own reason is in the result.
func packagesRejected(rejected, total int) error {
	return fmt.Errorf("%d of %d package(s) failed verification, so the whole delivery is refused (P11)", rejected, total)
}

// verifyOne checks one staged package and writes its canonical form.
func (r *Receiver) verifyOne(v *rpm.Verifier, staging, name, canonicalPath string, unread *atomic.Int64) (PackageCheck, repometa.ReceivedPackage, error) {
	check := PackageCheck{File: name}
	var pkg repometa.ReceivedPackage
	in, err := openStaged(staging, name, unix.O_RDWR)
	if err != nil {
		return check, pkg, err
	}
	defer in.Close()
	out, err := os.OpenFile(canonicalPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return check, pkg, err
	}
	defer out.Close()
	// The primary metadata lists the publisher's file, so membership is
	// judged on the bytes as received, hashed as they stream past once, and
	// counted by the offset they were read to (the unpacker may still be
	// running: a stat of the file could disagree).
	digest := sha256.New()
	vp, err := v.Verify(io.TeeReader(budgetReader{in, unread}, digest), out)
	check.Size, _ = in.Seek(0, io.SeekCurrent)
	discardStaged(in)
	if err != nil {
		return check, pkg, err
	}
	// Start writing the canonical copy to the disk now, while the stream
	// still arrives: the build's syncfs before the publish (F4) then finds
	// little left to write.
	_ = unix.SyncFileRange(int(out.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	check.NEVRA, check.SHA256 = vp.NEVRA(), fmt.Sprintf("%x", digest.Sum(nil))
	if len(vp.SignerFingerprints) > 0 {
		check.Signer = vp.SignerFingerprints[0]
	}
	check.Signers, check.HeaderSHA256 = vp.SignerFingerprints, vp.HeaderSHA256
	check.PayloadDigest, check.Obsoletes = vp.PayloadDigestAlgo+":"+vp.PayloadDigest, vp.Obsoletes
	if err := vp.CheckNameMatches(name); err != nil {
		return check, pkg, err
	}
	evr, err := rpmver.New(strconv.FormatUint(uint64(vp.Epoch), 10), vp.Version, vp.Release) // 0 when it has none
	if err != nil {
		return check, pkg, err
	}
	pkg = repometa.ReceivedPackage{File: name, Obsoletes: vp.Obsoletes, Package: repometa.Package{
		NEVRA: repometa.NEVRA{Name: vp.Name, EVR: evr, Arch: vp.Arch}, Size: check.Size}}
	copy(pkg.SHA256[:], digest.Sum(nil))
	check.OK = true
	return check, pkg, nil
}

// budgetReader reads r while the shared budget lasts.
type budgetReader struct {
	r      io.Reader
	unread *atomic.Int64
}

func (b budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.unread.Add(-int64(n)) < 0 {
		return 0, errors.New("the staged packages hold more than max_bytes, which the unpacker should have refused (S8)")
	}
	return n, err
}

// discardStaged empties a staged file that has been read: its bytes then
// need never be written to the disk, and its name stays, so the staging
// directory still lists what arrived. f had a single name, in the staging
// directory, when openStaged opened it, and the unpacker can give it none
// outside: dom0 writes nothing outside the staging directory (threats.md).
func discardStaged(f *os.File) { _ = f.Truncate(0) }

// checkFreshness judges the batch against the newest signed state of every
// enabled repository (verify.md §2).
func (r *Receiver) checkFreshness(ctx context.Context, tools *pkgtool.Tools, s Session, state *repometa.FreshnessState, staging string, metadata map[string]map[repometa.FileKind]string, received []repometa.ReceivedPackage, res *Result) (*repometa.Verdict, error) {
	c, repos := r.Config, *s.Repos
	batch := repometa.Batch{
		Received: received,
		Request: repometa.Request{Action: s.Action, Packages: s.Packages, Exclude: append(s.Excludes, repos.Excludes...),
			Include: repos.Includes, AllowDowngradeUnsafe: s.AllowDowngrade},
		Policy: repometa.Policy{MaxMetadataAge: c.MaxMetadataAge, RequireFresh: c.RequireFresh},
	}
	// Metadata of a repository dnf did not use would be checked against
	// nothing the user enabled (M6): a refusal, not a silent skip.
	for repo := range metadata {
		if !slices.Contains(repos.Enabled, repo) {
			return nil, fmt.Errorf("the delivery holds metadata for repository %s, which is not enabled", repo)
		}
	}
	keys, err := c.PinnedKeys()
	if err != nil {
		return nil, err
	}
	for _, id := range repos.Enabled {
		files, primary, err := r.repoFiles(staging, id, metadata[id], keys[id])
		if err != nil {
			return nil, err
		}
		if primary != nil {
			defer primary.Close()
		}
		files.Exclude, files.Include, files.Priority = repos.RepoExcludes[id], repos.RepoIncludes[id], repos.Priority(id)
		batch.Repos = append(batch.Repos, files)
	}
	var uname unix.Utsname
	if err := unix.Uname(&uname); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	batch.Machine = unix.ByteSliceToString(uname.Machine[:])
	if batch.Installed, err = tools.InstalledPackages(ctx, c.InstallRootPath()); err != nil {
		return nil, err
	}
	verdict := state.Evaluate(batch)
	// The result keeps the obsoletes that cover an installed package, all
	// the front end checks: a header may list hundreds.
	for i, p := range res.Packages {
		res.Packages[i].Obsoletes = slices.DeleteFunc(slices.Clone(p.Obsoletes), func(o rpm.Obsolete) bool {
			return !slices.ContainsFunc(batch.Installed, func(inst repometa.NEVRA) bool { return o.Covers(inst.Name, inst.EVR) })
		})
	}
	if !verdict.Accepted() {
		// The first refusing finding names the check; the result lists all.
		f := verdict.Findings[slices.IndexFunc(verdict.Findings, func(f repometa.Finding) bool { return f.Severity == repometa.Reject })]
		return verdict, fmt.Errorf("the freshness checks (signed metadata, installed packages) refuse the delivery (%s): %s", f.Kind, f.Detail)
	}
	return verdict, nil
}

// PinnedKeys loads the metadata key of every pinned repository. One key
// may be pinned for one repository only: repomd.xml does not name its
// repository, so two repositories signed by the same key could be passed
// off as each other (a testing repository as the stable one, or an old
// release repository as the updates one).
func (c Config) PinnedKeys() (map[string]*repometa.PinnedKey, error) {
	keys := map[string]*repometa.PinnedKey{}
	pinnedFor := map[string]string{}
	for id, path := range c.MetadataKeys {
		key, err := repometa.LoadPinnedKey(c.Path(path))
		if err != nil {
			return nil, fmt.Errorf("%s: repo.%s.metadata_key: %w", ConfigPath, id, err)
		}
		if other, ok := pinnedFor[key.Fingerprint]; ok {
			return nil, fmt.Errorf("%s pins key %s for both repositories %s and %s; their metadata could be swapped: pin a key of its own for each repository",
				ConfigPath, key.Fingerprint, min(id, other), max(id, other))
		}
		pinnedFor[key.Fingerprint], keys[id] = id, key
	}
	return keys, nil
}

// repoFiles gathers one repository's pinned key (nil: none) and staged
// metadata; primary, if not nil, is the private copy files.Primary reads.
func (r *Receiver) repoFiles(staging, id string, staged map[repometa.FileKind]string, key *repometa.PinnedKey) (files repometa.RepoFiles, primary *os.File, err error) {
	files = repometa.RepoFiles{ID: id, Key: key}
	if key == nil {
		return files, nil, nil
	}
	for _, m := range []struct {
		kind repometa.FileKind
		into *[]byte
	}{{repometa.FileRepomd, &files.Repomd}, {repometa.FileRepomdSignature, &files.Signature}} {
		kind, into := m.kind, m.into
		name, ok := staged[kind]
		if !ok {
			continue // nil: not sent
		}
		f, err := openStaged(staging, name, unix.O_RDONLY)
		if err != nil {
			return files, nil, err
		}
		b, err := io.ReadAll(io.LimitReader(f, kind.MaxSize()+1))
		f.Close()
		if err != nil {
			return files, nil, err
		}
		*into = append([]byte{}, b...) // sent, even if empty
	}
	if name, ok := staged[repometa.FilePrimary]; ok {
		if primary, err = r.privateCopy(staging, name, repometa.FilePrimary.MaxSize()); err != nil {
			return files, nil, err
		}
		files.Primary = primary
	}
	return files, primary, nil
}

// privateCopy copies a staged file into an unlinked file only dom0 can
// write: the primary is read twice (digest, then parse), and the staging
// directory belongs to the unpacker's user, so the second read must not be
// of a file that user could still change.
func (r *Receiver) privateCopy(staging, name string, limit int64) (*os.File, error) {
	in, err := openStaged(staging, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := os.CreateTemp(r.Config.Path(StateDir), ".staged-")
	if err != nil {
		return nil, err
	}
	os.Remove(out.Name())
	if _, err := io.Copy(out, io.LimitReader(in, limit+1)); err != nil {
		out.Close()
		// A path in err would be the unlinked copy's, which tells a
		// person nothing.
		if pathErr, ok := errors.AsType[*os.PathError](err); ok {
			err = pathErr.Err
		}
		return nil, fmt.Errorf("copying %s out of the staging directory into %s: %w", name, r.Config.Path(StateDir), err)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// report copies the freshness verdict into the result for people.
func report(res *Result, v *repometa.Verdict) {
	if v == nil {
		return
	}
	res.Freshness = v.Repos
	for _, f := range v.Findings {
		res.Findings = append(res.Findings, Finding{Kind: string(f.Kind), Repo: f.Repo, Package: f.Package,
			Error: f.Severity == repometa.Reject, Message: f.String()})
	}
}
