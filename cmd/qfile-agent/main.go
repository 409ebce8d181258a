// Command qfile-agent sends files to a qfile receiver (docs/qfile.md): the stream goes to
// stdout, the receiver's status comes back on stdin.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/qfile/qfilesend"
)

const usage = `usage: qfile-agent [--progress] [FILE...]

Sends each FILE (a regular file, a symlink, or a directory with everything
below it) under its base name as a qfile stream on stdout, then waits for the
receiver's status on stdin. Exits 0 only when the receiver reports success
with the same checksum; otherwise prints the error and the last file, exits 1
(2 on a usage error).
With no FILE it sends only the end marker: an empty delivery, which tells the
receiver "nothing new" rather than "nothing arrived".

  --progress   print the files and bytes sent so far on stderr (at most every
               200 ms, also within a large file), and the totals at the end
  --version    print the release and commit, and exit

Example (a local round trip through two pipes):
  mkfifo status
  qfile-agent --progress pkgs/*.rpm <status | qfile-dom0-unpacker "$USER" staging >status
`

func main() {
	// --help prints on stdout, the stream's channel, which is right: a help
	// request sends nothing.
	cli := cmdline.Usage{Command: "qfile-agent", Text: usage}
	fs := cli.FlagSet()
	progress := fs.Bool("progress", false, "")
	cli.Parse(fs, os.Args[1:])
	// A receiver that refuses something closes the pipe: get EPIPE (and then read its status)
	// instead of dying silently from SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	enlargePipe(os.Stdout)
	sender := qfilesend.New(os.Stdout, os.Stdin)
	if *progress {
		var last time.Time
		sender.Progress = func(files int, bytes int64) {
			if now := time.Now(); now.Sub(last) >= 200*time.Millisecond {
				last = now
				printProgress("", files, bytes)
			}
		}
	}
	err := send(sender, fs.Args())
	if *progress {
		// The last line above may be up to 200 ms old: say what was sent in the end, also
		// when the transfer failed.
		files, bytes := sender.Sent()
		printProgress("in total ", files, bytes)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "qfile-agent: %v\n", err)
		os.Exit(1)
	}
	if *progress {
		fmt.Fprintln(os.Stderr, "qfile-agent: done, the receiver confirmed every byte")
	}
}

// send sends every path, then the end marker, and checks the receiver's status.
func send(sender *qfilesend.Sender, paths []string) error {
	for _, path := range paths {
		if err := sender.Send(path); err != nil {
			return err
		}
	}
	return sender.Finish()
}

// printProgress prints the files and bytes sent on stderr, in bytes below 1 MiB so that a
// small transfer does not read as nothing.
func printProgress(prefix string, files int, bytes int64) {
	size := fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
	if bytes < 1<<20 {
		size = fmt.Sprintf("%d bytes", bytes)
	}
	fmt.Fprintf(os.Stderr, "qfile-agent: %s%d files, %s sent\n", prefix, files, size)
}

// enlargePipe makes out, if it is a pipe, hold 1 MiB (the unprivileged maximum) instead of
// 64 KiB: each process then wakes up once per megabyte, not once per 64 KiB (docs/qfile.md,
// "Performance"). Anything else (a socket, a file) is left as it is.
func enlargePipe(out *os.File) {
	_, _ = unix.FcntlInt(out.Fd(), unix.F_SETPIPE_SZ, 1<<20)
}
