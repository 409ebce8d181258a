// Command pedos-download-dom0-updates is the UpdateVM's side of a dom0
// update: dom0 runs it over qrexec. See internal/updatevm.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/dnftool"
	"pedos.dev/updates/internal/programs"
	"pedos.dev/updates/internal/release"
	"pedos.dev/updates/internal/updatecall"
	"pedos.dev/updates/internal/updatevm"
)

const usage = `usage: pedos-download-dom0-updates --sync [--clean]
       pedos-download-dom0-updates --check-only [--clean] [DNF-OPTIONS]
       pedos-download-dom0-updates --action=ACT [--session=ID] [--clean] [DNF-OPTIONS] [--] [PACKAGE...]

Runs in the UpdateVM; dom0's pedos-dom0-update calls it with qrexec-client.

  --sync             read dom0's configuration (a tar stream: rpm database,
                     repository definitions, dnf.conf, keys) on stdin into
                     the fake installroot
  --check-only       exit 100 if updates for dom0 exist, 0 if not; with
                     updates, stdout lists them, one per line (tab-separated
                     NAME EPOCH VERSION RELEASE ARCH REPO)
  --action=ACT       upgrade, install, reinstall, downgrade, upgrade-to:
                     download the transaction and, with --session, send its
                     packages and the repository metadata to dom0's
                     PedOS.ReceiveUpdates; list, search, info: answer here
  --session=ID       the session dom0 started (sent as the service argument)
  --clean            empty the download cache first (dom0 sends it with --sync
                     too: a cache that filled the disk would stop the sync)
  --root DIR         the fake installroot, an existing absolute directory
                     (default /var/lib/PedOS/dom0-updates, which the package
                     makes)
  other -OPTIONS     passed to dnf; a value goes after "=" (--enablerepo=GLOB)
  --version          print the release and commit, and exit

--action, --session and --root take their value after "=" or as the next
word. One of them given twice with different values, another action, two of
--sync, --check-only and --action, a word beginning with "-" after "--", an
option that is not this command's without --check-only or --action (only they
pass it to dnf), dnf options or packages with --sync, or a relative --root is
a usage error.

Progress (while dnf downloads, how much has arrived, every 5 s) and dnf's
output go to stderr, which dom0 shows to the person waiting. Exit status:
0 done, 100 updates available (--check-only), 1 failure, 2 usage error,
125 qrexec could not reach dom0 or its receive service (no such service),
126 dom0 refused the delivery before reading it (its qrexec policy, or its
receive service).

examples:
  pedos-dom0-update's calls for an upgrade, as they arrive:
  pedos-download-dom0-updates --sync < dom0-config.tar
  pedos-download-dom0-updates --action=upgrade --session=3f2a0c9d51e84b7a9c16d0e2f4a8b5e9 --
  by hand in the UpdateVM, once dom0 has synced its configuration:
  pedos-download-dom0-updates --check-only
  pedos-download-dom0-updates --action=info hello
`

// cli prints the help for --help, and a usage error with a pointer to it.
var cli = cmdline.Usage{
	Command: "pedos-download-dom0-updates",
	Text:    usage,
	OnError: "Try 'pedos-download-dom0-updates --help'.",
}

type options struct {
	sync, checkOnly, clean bool
	root                   string
	req                    updatevm.Request
}

// setOnce sets an option's value. Given twice, the last would win
// silently: a whole download sent under a session dom0 did not start, or
// another action; the same value twice is no conflict.
func setOnce(option *string, name, value string) error {
	if *option != "" && *option != value {
		return fmt.Errorf("%s is given twice, with different values", name)
	}
	*option = value
	return nil
}

// errVersion is parse's answer to --version.
var errVersion = errors.New("--version")

func parse(args []string) (options, error) {
	o := options{root: updatevm.DefaultInstallRoot}
	var root string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var err error
		name, value, hasValue := strings.Cut(a, "=")
		// Ours take their value after "=" or as the next word (dom0 sends
		// the first form; people debugging type either).
		if (name == "--action" || name == "--session" || name == "--root") && !hasValue {
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				return o, fmt.Errorf("%s needs a value", name)
			}
			i++
			value = args[i]
		}
		if (name == "--action" || name == "--session" || name == "--root") && value == "" {
			// An empty session would download and deliver nothing, exit 0.
			return o, fmt.Errorf("%s needs a value", name)
		}
		switch {
		case a == "--":
			// dnf has no "--" of its own that would keep a word from being
			// an option (dnf install -- --nogpgcheck is not a package).
			for _, pkg := range args[i+1:] {
				if strings.HasPrefix(pkg, "-") {
					return o, fmt.Errorf("after \"--\", %q is no package name: dnf would take it for an option", pkg)
				}
			}
			o.req.Packages = append(o.req.Packages, args[i+1:]...)
			i = len(args)
		case a == "--sync":
			o.sync = true
		case a == "--check-only":
			o.checkOnly = true
		case a == "--clean":
			o.clean = true
		case name == "--action":
			err = setOnce(&o.req.Action, name, value)
		case name == "--session":
			err = setOnce(&o.req.SessionID, name, value)
		case name == "--root":
			err = setOnce(&root, name, value)
		case a == "-h" || a == "--help":
			return o, flag.ErrHelp
		case a == "--version":
			return o, errVersion
		case (name == "--enablerepo" || name == "--disablerepo" || name == "--exclude" || name == "--excludepkgs") && !hasValue:
			// The next word would be taken for a package, and the switch lost to the
			// metadata export's reckoning of the enabled repositories.
			return o, fmt.Errorf("write %s=VALUE: dnf options reach this command with their value after \"=\"", name)
		case strings.HasPrefix(a, "-x"):
			return o, errors.New("write --exclude=VALUE for -x: dnf options reach this command with their value after \"=\"")
		case strings.HasPrefix(a, "-"):
			o.req.DNFOptions = append(o.req.DNFOptions, a)
		default:
			o.req.Packages = append(o.req.Packages, a)
		}
		if err != nil {
			return o, err
		}
	}
	if root != "" {
		o.root = root
	}
	if !filepath.IsAbs(o.root) {
		return o, fmt.Errorf("--root needs an absolute directory, not %q", o.root)
	}
	// Each is a different job: taking one and dropping the others would
	// do what was not asked.
	modes := 0
	for _, asked := range []bool{o.sync, o.checkOnly, o.req.Action != ""} {
		if asked {
			modes++
		}
	}
	// Other -OPTIONS are dnf's, and reach it only with a mode that runs
	// dnf: without one, an unknown option is the first thing to name.
	switch {
	case modes == 0 && len(o.req.DNFOptions) > 0:
		return o, fmt.Errorf("unknown option %q: options other than this command's own are passed to dnf, with --check-only or --action=ACT only", o.req.DNFOptions[0])
	case modes != 1:
		return o, errors.New("exactly one of --sync, --check-only or --action=ACT is needed")
	case o.sync && len(o.req.DNFOptions)+len(o.req.Packages) > 0:
		return o, fmt.Errorf("--sync runs no dnf: it takes no dnf options or packages (%q)", append(o.req.DNFOptions, o.req.Packages...)[0])
	}
	// dnf would take any verb; dom0 sends only these.
	a := o.req.Action
	if a != "" && !updatecall.IsDownload(a) && !updatecall.IsQuery(a) {
		return o, fmt.Errorf("unknown action %q: the UpdateVM downloads for %s, and answers %s",
			a, strings.Join(updatecall.DownloadActions, ", "), strings.Join(updatecall.QueryActions, ", "))
	}
	// Found now, not after dnf's usage text or a whole download.
	switch id := o.req.SessionID; {
	case updatecall.IsDownload(a) && a != "upgrade" && len(o.req.Packages) == 0:
		return o, fmt.Errorf("--action=%s needs package names", a)
	case id != "" && !updatecall.IsDownload(a):
		return o, errors.New("--session goes with a download (--action=upgrade, install, …): only a download is sent to dom0")
	case id != "" && !updatecall.ValidSessionID(id):
		return o, fmt.Errorf("--session %q is not a session id: dom0 makes %d lowercase hex digits", id, updatecall.SessionIDLength)
	}
	return o, nil
}

func main() {
	os.Exit(run())
}

func run() int {
	o, err := parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		cli.Help()
	}
	if errors.Is(err, errVersion) {
		fmt.Println(release.Line("pedos-download-dom0-updates"))
		return 0
	}
	if err != nil {
		cli.Fail("%v", err)
	}
	// The package makes the default root (tmpfiles.d); a --root that is not
	// there is a mistake, and dnf must not fill a new tree in its place.
	if fi, err := os.Stat(o.root); err != nil || !fi.IsDir() {
		fmt.Fprintf(os.Stderr, "pedos-download-dom0-updates: the fake installroot %s is not an existing directory\n", o.root)
		return 1
	}
	tools, err := dnftool.New("")
	if err != nil {
		fmt.Fprintf(os.Stderr, "pedos-download-dom0-updates: %v\n", err)
		return 1
	}
	defer tools.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	u := &updatevm.UpdateVM{InstallRoot: o.root, Tools: tools, Log: os.Stderr}
	code, err := do(ctx, u, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pedos-download-dom0-updates: %v\n", err)
	}
	return code
}

// do carries out the one job o asks for.
func do(ctx context.Context, u *updatevm.UpdateVM, o options) (int, error) {
	if o.clean {
		if err := u.Clean(); err != nil {
			return 1, err
		}
	}
	switch {
	case o.sync:
		return exitOf(u.ApplySync(os.Stdin))
	case o.checkOnly:
		err := u.CheckUpdates(ctx, o.req, os.Stdout)
		if errors.Is(err, updatevm.ErrUpdatesAvailable) {
			return 100, nil
		}
		return exitOf(err)
	case updatecall.IsQuery(o.req.Action):
		return u.Query(ctx, o.req, os.Stdout)
	}
	sender := updatevm.Sender{QrexecClientVM: programs.Find("qrexec-client-vm"), QfileAgent: programs.Find("qfile-agent"), Progress: true}
	return exitOf(u.DownloadAndSend(ctx, o.req, sender))
}

// exitOf is the exit status for err: qrexec's failure (125) and refusal
// (126) of the delivery pass through to dom0, which tells them apart from a
// failed download (overview.md, exit codes); a service dom0 lacks is
// qrexec's failure (a 127 would read as a command missing here); any other
// error is 1.
func exitOf(err error) (int, error) {
	var send *updatevm.SendError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &send) && (send.Code == updatevm.ExitQrexecFailure || send.Code == updatevm.ExitRefused):
		return send.Code, err
	case errors.As(err, &send) && send.Code == updatevm.ExitNoService:
		return updatevm.ExitQrexecFailure, err
	}
	return 1, err
}
