// Command pedos-receive-updates is dom0's PedOS.ReceiveUpdates service: it
// takes a delivery of packages from the UpdateVM, verifies it and publishes
// it as the cached repository. See internal/dom0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/release"
)

// buildTime is set by the Makefile (-X main.buildTime=RFC3339): the newest
// time this program can vouch for, a floor for expiry checks.
var buildTime string

const usage = `usage: pedos-receive-updates [--root DIR] [--unpacker PATH] [--tool-path DIRS] [--] SESSION
       pedos-receive-updates --help | --version  (run by hand, not by qrexec)

dom0's PedOS.ReceiveUpdates qrexec service. qrexec runs it with the calling
domain in QREXEC_REMOTE_DOMAIN and the session id as its argument; the
delivery (a qfile stream) arrives on stdin, and stdout carries only the
unpacker's status. It refuses, before reading a byte, a caller that is not
the UpdateVM of /etc/pedos/updates.conf or an id that is not the live
session of a running pedos-dom0-update. Otherwise it unpacks the stream in a
sandbox, verifies every package and the repository metadata, and publishes
the new cached repository atomically, or changes nothing.

The result (JSON) goes to /var/lib/PedOS/state/result.json for the waiting
front end, and a record to /var/log/pedos/updates.log.

options:
  --root DIR       dom0's root prefix (tests; "" on a real host)
  --unpacker PATH  qfile-dom0-unpacker (default: next to this program)
  --tool-path DIRS where rpmkeys, rpm and createrepo_c are looked up
                   (default /usr/bin:/bin:/usr/sbin:/sbin, whatever PATH
                   this program was started with)

example (as qrexec would run it):
  QREXEC_REMOTE_DOMAIN=sys-firewall pedos-receive-updates 3f2a…e9 < stream
`

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("pedos-receive-updates", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the usage is printed once, below
	root := fs.String("root", "", "")
	unpacker := fs.String("unpacker", "", "")
	toolPath := fs.String("tool-path", "/usr/bin:/bin:/usr/sbin:/sbin", "")
	// The last argument is the session id from the caller: never parse it
	// as an option (qrexec arguments may start with "-").
	caller := os.Getenv("QREXEC_REMOTE_DOMAIN")
	if len(os.Args) < 2 && caller != "" {
		// A call of PedOS.ReceiveUpdates without +ID: refused like a
		// wrong id (C2), not answered with a usage text in dom0's log.
		fmt.Fprintf(os.Stderr, "pedos-receive-updates: refused the call from %s: it names no session (PedOS.ReceiveUpdates+ID)\n", dom0.Loggable([]byte(caller)))
		return 126
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, "pedos-receive-updates: no session id\n"+usage)
		return 2
	}
	// Help is for a person. Run by qrexec, "-h" is a session id the caller
	// chose, refused like any other, and stdout carries the status alone.
	if caller == "" && len(os.Args) == 2 && (os.Args[1] == "-h" || os.Args[1] == "--help") {
		fmt.Print(usage)
		return 0
	}
	if caller == "" && len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(release.Line("pedos-receive-updates"))
		return 0
	}
	if err := fs.Parse(os.Args[1 : len(os.Args)-1]); err != nil || fs.NArg() != 0 {
		if err != nil {
			fmt.Fprintf(os.Stderr, "pedos-receive-updates: %v\n", err)
		}
		fmt.Fprint(os.Stderr, "pedos-receive-updates: the last argument is always the session id, and the options come before it (--help and --version stand alone)\n"+usage)
		return 2
	}
	// The tools run as root are looked up in a fixed PATH, never in the
	// caller's: sudo keeps the caller's PATH where sudoers has no
	// secure_path (the PedOS/Qubes wrapper, dist/qubes).
	if err := os.Setenv("PATH", *toolPath); err != nil {
		fmt.Fprintf(os.Stderr, "pedos-receive-updates: %v\n", err)
		return 1
	}
	untrustedSession := os.Args[len(os.Args)-1]
	if caller == "" {
		fmt.Fprintln(os.Stderr, "pedos-receive-updates: QREXEC_REMOTE_DOMAIN is not set: qrexec runs this service and names the calling domain there")
		return 2
	}
	if *unpacker == "" {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintf(os.Stderr, "pedos-receive-updates: %v\n", err)
			return 1
		}
		*unpacker = filepath.Join(filepath.Dir(self), "qfile-dom0-unpacker")
	}
	config, err := dom0.LoadConfig(*root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pedos-receive-updates: %v\n", err)
		return 1
	}
	r := receiver(config, *unpacker)
	if r.BuildTime.IsZero() {
		fmt.Fprintln(os.Stderr, "pedos-receive-updates: warning: built without a build time (make sets one), so the time floor is only the one saved in the state")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = r.Serve(ctx, caller, untrustedSession, os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pedos-receive-updates: %v\n", err)
		if errors.Is(err, dom0.ErrRefused) {
			return 126
		}
		return 1
	}
	fmt.Fprintln(os.Stderr, "pedos-receive-updates: delivery accepted and published")
	return 0
}

// receiver is the service, its clock never taken back behind this
// program's build (M9: dom0's clock may have come from a VM).
func receiver(config dom0.Config, unpacker string) *dom0.Receiver {
	return &dom0.Receiver{Config: config, Unpacker: unpacker, Log: os.Stderr, BuildTime: buildStamp(), Now: time.Now}
}

// buildStamp is buildTime, or, in a build without it (a plain go build),
// the time of the commit the build came from: either is a time dom0 knows
// has passed (verify.md §2, the time floor). Zero if neither is known.
func buildStamp() time.Time {
	if t, err := time.Parse(time.RFC3339, buildTime); err == nil {
		return t
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, setting := range info.Settings {
			if setting.Key == "vcs.time" {
				t, _ := time.Parse(time.RFC3339, setting.Value)
				return t
			}
		}
	}
	return time.Time{}
}
