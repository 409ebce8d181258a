// Command qfile-agent sends files to a qfile receiver (docs/qfile.md): the stream goes to
// stdout, the receiver's status comes back on stdin.
package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
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

  --progress   print the files and bytes sent so far, of those the FILEs hold, on
               stderr (at most every 200 ms, also within a large file), and the
               totals at the end
  --version    print the release and commit, and exit

Example (a local round trip through two pipes):
  mkdir staging; mkfifo status
  qfile-agent --progress pkgs/*.rpm <status | qfile-dom0-unpacker "$USER" staging >status
`

func main() {
	// --help prints on stdout, the stream's channel, which is right: a help
	// request sends nothing.
	cli := cmdline.Usage{Command: "qfile-agent", Text: usage}
	fs := cli.FlagSet()
	progress := fs.Bool("progress", false, "")
	cli.Parse(fs, os.Args[1:])
	// A path that is not there is a typo: said before a byte goes out, so that the receiver
	// gets nothing rather than the files before it and a stream without its end.
	for _, path := range fs.Args() {
		if _, err := os.Lstat(path); err != nil {
			fmt.Fprintf(os.Stderr, "qfile-agent: %v (nothing sent)\n", err)
			os.Exit(1)
		}
	}
	// A receiver that refuses something closes the pipe: get EPIPE (and then read its status)
	// instead of dying silently from SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	enlargePipe(os.Stdout)
	sender := qfilesend.New(os.Stdout, os.Stdin)
	if *progress {
		var last time.Time
		plan := plannedTotals(fs.Args())
		sender.Progress = func(files int, bytes int64) {
			if now := time.Now(); now.Sub(last) >= 200*time.Millisecond {
				last = now
				fmt.Fprintf(os.Stderr, "qfile-agent: %s\n", plan.progress(files, bytes))
			}
		}
	}
	err := send(sender, fs.Args())
	if *progress {
		// The last line above may be up to 200 ms old: say what was sent in the end, also
		// when the transfer failed.
		files, bytes := sender.Sent()
		fmt.Fprintf(os.Stderr, "qfile-agent: in total %d files, %s sent\n", files, size(bytes))
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

// totals is what a transfer holds: its entries and its regular files' bytes.
type totals struct {
	files int
	bytes int64
}

// plannedTotals counts what paths hold as the sender will send it (every entry, symlinks not
// followed; the sizes of regular files), so that a progress line says how far along the
// transfer is. Zero when a path cannot be walked: the send then says why.
func plannedTotals(paths []string) totals {
	var t totals
	for _, path := range paths {
		err := filepath.WalkDir(filepath.Clean(path), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			t.files++
			if d.Type().IsRegular() {
				info, err := d.Info()
				if err != nil {
					return err
				}
				t.bytes += info.Size()
			}
			return nil
		})
		if err != nil {
			return totals{}
		}
	}
	return t
}

// progress is a progress line: what was sent of what the transfer holds, in per cent of its
// bytes (of its files where it has no bytes); without the totals when they are not known or
// were passed (a file grew).
func (plan totals) progress(files int, bytes int64) string {
	if plan.files == 0 || files > plan.files || bytes > plan.bytes {
		return fmt.Sprintf("%d files, %s sent", files, size(bytes))
	}
	done := float64(files) / float64(plan.files)
	if plan.bytes > 0 {
		done = float64(bytes) / float64(plan.bytes)
	}
	return fmt.Sprintf("%d of %d files, %s of %s sent (%.0f %%)", files, plan.files, size(bytes), size(plan.bytes), 100*done)
}

// size is a byte count for people, in bytes below 1 MiB so that a small transfer does not
// read as nothing.
func size(bytes int64) string {
	if bytes < 1<<20 {
		return fmt.Sprintf("%d bytes", bytes)
	}
	return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
}

// enlargePipe makes out, if it is a pipe, hold 1 MiB (the unprivileged maximum) instead of
// 64 KiB: each process then wakes up once per megabyte, not once per 64 KiB (docs/qfile.md,
// "Performance"). Anything else (a socket, a file) is left as it is.
func enlargePipe(out *os.File) {
	_, _ = unix.FcntlInt(out.Fd(), unix.F_SETPIPE_SZ, 1<<20)
}
