// Command qfile-dom0-unpacker is dom0's end of a qfile transfer (docs/qfile.md): it confines
// itself to DIR, unpacks the stream on stdin there, writes the status (and nothing else) to
// stdout, and exits with the errno it reported.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/qfile"
	"pedos.dev/updates/internal/release"
	"pedos.dev/updates/internal/sandbox"
)

const usage = `usage: qfile-dom0-unpacker USER DIR [--only-regular-files] [-v] [--timeout D] [--no-sync]
       qfile-dom0-unpacker --version

Reads a qfile stream on stdin, unpacks it into DIR (which must exist and be
writable by USER), writes the status to stdout and exits with the errno it
reported (0 on success; 255 for the "legal EOF" code, which does not fit).
When run as root it switches to USER (a name or a numeric uid) after
confining itself to DIR; run as USER already, it does not switch. USER
root keeps root's rights, with a warning: name an unprivileged user.

  --only-regular-files  dom0 update mode: refuse directories and symlinks
  -v                    print each received name on stderr
  --timeout D           give up on a stream that has not ended after D (default 1h)
  --no-sync             report success without syncing DIR's file system first;
                        for a caller that copies the files elsewhere and makes
                        only the copies durable (dom0's receive service)
  --version             print the release and commit, and exit

Environment: UPDATES_MAX_BYTES (default 4 GiB, capped at 90 % of the free
space of DIR's file system) and UPDATES_MAX_FILES (default 4096).

Example (the status goes back to the agent through a FIFO):
  mkfifo status
  qfile-agent pkgs/*.rpm <status |
    qfile-dom0-unpacker nobody /var/lib/staging --only-regular-files >status
`

func main() {
	parent := os.Getppid()
	opts := parseArgs(os.Args[1:])
	limits, capBytes, err := limitsFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "qfile-dom0-unpacker: %v\n", err)
		os.Exit(2)
	}
	statusOut := guardStdout()
	var once sync.Once
	report := func(st qfile.Status, err error) {
		once.Do(func() {
			if err != nil {
				fmt.Fprintf(os.Stderr, "qfile-dom0-unpacker: %s\n", said(err))
			}
			if _, werr := statusOut.Write(st.Append(nil)); werr != nil {
				fmt.Fprintf(os.Stderr, "qfile-dom0-unpacker: sending the status: %v\n", werr)
			}
			os.Exit(int(min(st.Code, 255)))
		})
	}
	fail := func(err error) { report(qfile.Status{Code: qfile.ErrnoOf(err)}, err) }
	// For the check below, which must not depend on DIR's parents (the unpacker works
	// below the descriptor it opened before switching user, never through the path).
	// Opened first: a DIR that is no directory is ENOTDIR here, where os.OpenRoot gives
	// no errno for a file and blocks on a FIFO.
	dirFD, err := unix.Open(opts.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail(&os.PathError{Op: "open", Path: opts.dir, Err: err})
	}
	root, err := os.OpenRoot(opts.dir)
	if err != nil {
		fail(err)
	}
	if capBytes {
		var fsStat unix.Statfs_t
		if err := unix.Statfs(opts.dir, &fsStat); err != nil {
			fail(fmt.Errorf("free space of %s: %w", opts.dir, err))
		}
		limits.MaxBytes = min(limits.MaxBytes, fsStat.Bavail*uint64(fsStat.Frsize)/10*9)
	}
	// A 1 MiB pipe instead of 64 KiB: one wake-up per megabyte (docs/qfile.md,
	// "Performance"); a stdin that is not a pipe is left as it is.
	_, _ = unix.FcntlInt(os.Stdin.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	// RLIMIT_FSIZE bounds every file the process writes: the status's and stderr too, when they
	// are files (run by hand, `>status 2>>log`), so those keep a mebibyte past their size.
	// (Descriptor 1 is stderr's copy by now: guardStdout.)
	maxFileSize := limits.MaxBytes
	logRoom := uint64(math.MaxUint64) // what -v may write to a stderr that is a file
	for _, f := range []*os.File{statusOut, os.Stderr} {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			maxFileSize = max(maxFileSize, uint64(fi.Size())+1<<20)
			if f == os.Stderr {
				logRoom = uint64(fi.Size())
			}
		}
	}
	if logRoom != math.MaxUint64 {
		// The names stop 64 KiB short of the limit: the refusal that ends
		// the stream must still reach the log.
		logRoom = maxFileSize - logRoom - 64<<10
	}
	// The sandbox goes up before the first byte of the stream is read.
	warnings, err := sandbox.Confine(sandbox.Policy{
		WritableDir: opts.dir,
		User:        switchTo(opts.user),
		MaxFileSize: int64(min(maxFileSize, math.MaxInt64)),
	})
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "qfile-dom0-unpacker: warning: %s\n", w)
	}
	if err != nil {
		fail(err)
	}
	// Die with the caller: a receive service that was killed must not leave the unpacker
	// writing into a staging directory the next delivery has already removed (F1). Set after
	// the user switch, which clears it. A caller already gone by then is noticed below, but
	// not by pid 1 of a namespace, whose parent is always 0 (docs/receive.md).
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		fail(fmt.Errorf("asking to die with the caller: %w", err))
	}
	if os.Getppid() != parent {
		fail(errors.New("the caller exited before the stream was read"))
	}
	// Said plainly here, rather than as the first file's "permission denied".
	if err := unix.Faccessat(dirFD, ".", unix.W_OK|unix.X_OK, 0); err != nil {
		fail(fmt.Errorf("%s is not writable by the user the unpacker runs as (%s): %w", opts.dir, opts.user, err))
	}
	unix.Close(dirFD)
	// The deadline ends a stalled stream (S11): a read cannot be interrupted, so the timer
	// sends the status itself and exits.
	time.AfterFunc(opts.timeout, func() {
		report(qfile.Status{Code: uint32(syscall.ETIMEDOUT)},
			fmt.Errorf("the stream did not end within %v (S11): %w", opts.timeout, syscall.ETIMEDOUT))
	})
	rc := &qfile.Receiver{Root: root, Limits: limits, OnlyRegularFiles: opts.onlyRegular, NoSync: opts.noSync}
	if opts.verbose {
		rc.Received = func(name string, size uint64) {
			line := fmt.Sprintf("qfile-dom0-unpacker: received %q (%d bytes)\n", name, size)
			switch {
			case uint64(len(line)) <= logRoom:
				logRoom -= uint64(len(line))
				os.Stderr.WriteString(line)
			case logRoom != 0:
				logRoom = 0
				os.Stderr.WriteString("qfile-dom0-unpacker: -v: no more names logged: stderr, a file, may grow by a mebibyte only\n")
			}
		}
	}
	report(rc.Receive(os.Stdin))
}

type options struct {
	onlyRegular, verbose, noSync bool
	timeout                      time.Duration
	user, dir                    string
}

// parseArgs accepts the flags before, between or after the two operands, like the reference.
func parseArgs(args []string) options {
	var o options
	fs := flag.NewFlagSet("qfile-dom0-unpacker", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usageExit says what went wrong
	fs.BoolVar(&o.onlyRegular, "only-regular-files", false, "")
	fs.BoolVar(&o.verbose, "v", false, "")
	fs.BoolVar(&o.noSync, "no-sync", false, "")
	fs.DurationVar(&o.timeout, "timeout", time.Hour, "")
	fs.BoolFunc("version", "", func(string) error {
		fmt.Println(release.Line("qfile-dom0-unpacker"))
		os.Exit(0)
		return nil
	})
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			usageExit(err)
		}
		if fs.NArg() == 0 {
			break
		}
		// After "--" every word is an operand (a DIR named -v), as flag
		// takes it; parsing again would read them as options.
		if parsed := len(args) - fs.NArg(); parsed > 0 && args[parsed-1] == "--" {
			operands = append(operands, fs.Args()...)
			break
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(operands) != 2:
		usageExit(fmt.Errorf("want USER and DIR, got %d operand(s)", len(operands)))
	case operands[0] == "":
		// An empty USER would leave root's rights in place without a word.
		usageExit(errors.New("USER is empty"))
	case o.timeout <= 0:
		usageExit(fmt.Errorf("--timeout %v is not positive", o.timeout))
	}
	o.user, o.dir = operands[0], operands[1]
	return o
}

// usageExit prints the usage and exits: on stdout with 0 when it was asked for (--help), else
// on stderr after what was wrong, with 2.
func usageExit(err error) {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(usage)
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "qfile-dom0-unpacker: %v\n%s", err, usage)
	os.Exit(2)
}

// limitsFromEnv reads the limits from the environment; an unparsable value or 0 is an error,
// never "unlimited". capBytes says the byte limit is the default, to be capped at 90 % of the free
// space of DIR's file system.
func limitsFromEnv() (limits qfile.Limits, capBytes bool, err error) {
	limits = qfile.Limits{MaxBytes: 4 << 30, MaxFiles: 4096}
	_, bytesSet := os.LookupEnv("UPDATES_MAX_BYTES")
	// In this order, so that of two bad values the same one is named every time.
	for _, v := range []struct {
		name  string
		limit *uint64
	}{{"UPDATES_MAX_BYTES", &limits.MaxBytes}, {"UPDATES_MAX_FILES", &limits.MaxFiles}} {
		if s, ok := os.LookupEnv(v.name); ok {
			n, err := strconv.ParseUint(s, 10, 64)
			if errors.Is(err, strconv.ErrRange) {
				return limits, false, fmt.Errorf("%s=%q is larger than %d", v.name, s, uint64(math.MaxUint64))
			}
			if err != nil {
				return limits, false, fmt.Errorf("%s=%q is not a decimal number", v.name, s)
			}
			if n == 0 {
				// The reference reads 0 as "no limit"; there is none here (docs/qfile.md).
				return limits, false, fmt.Errorf("%s=0: there is no unlimited transfer; name a limit", v.name)
			}
			*v.limit = n
		}
	}
	return limits, !bytesSet, nil
}

// guardStdout keeps the status channel for the status alone: fd 1 becomes a copy of stderr,
// so that no stray write from anywhere can corrupt what the sender reads (spec "Status").
func guardStdout() *os.File {
	fd, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err == nil {
		err = unix.Dup3(2, 1, 0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "qfile-dom0-unpacker: setting up stdout: %v\n", err)
		os.Exit(int(syscall.EBADF))
	}
	return os.NewFile(uintptr(fd), "status")
}

// switchTo is the user for the sandbox to switch to. Root asked to stay root does not switch,
// and says so (qfile.md wants an unprivileged user; dom0 refuses root as unpacker_user); a
// process already running as USER keeps its ids (the sandbox drops its capabilities).
func switchTo(userArg string) string {
	if os.Geteuid() == 0 && (userArg == "root" || userArg == "0") {
		fmt.Fprintln(os.Stderr, "qfile-dom0-unpacker: warning: USER is root, so the unpacker keeps root's rights: name an unprivileged user")
		return ""
	}
	return userArg
}

// said is err for dom0's log. The C library's words for some codes the spec gives a meaning
// mislead ("link has been severed" for an unsafe symlink target, "errno 31415926" for a cut
// stream): the receiver's own words say it, followed by the code's name.
func said(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	switch errno {
	case syscall.EILSEQ, syscall.ENOLINK, syscall.EREMOTEIO, syscall.EPROTO, syscall.ETIMEDOUT:
		return strings.TrimSuffix(err.Error(), ": "+errno.Error()) + " (" + unix.ErrnoName(errno) + ")"
	case qfile.LegalEOF:
		return strings.TrimSuffix(err.Error(), ": "+errno.Error()) + " (legal EOF)"
	}
	return err.Error()
}
