// Command pedos-dom0-update updates dom0's packages through the UpdateVM
// without ever giving dom0 a network. See internal/frontend.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"pedos.dev/updates/internal/dnftool"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/programs"
	"pedos.dev/updates/internal/release"
)

const usage = `usage: pedos-dom0-update [options] [PACKAGE...]

Updates dom0 without a network: the UpdateVM resolves and downloads the
packages, dom0 verifies every signature and the signed repository metadata,
builds a local repository and installs from it with dnf.

With no PACKAGE, installs all available updates; with PACKAGEs, installs
those (and what they need). A PACKAGE is a name, name-version, glob or
provide; a package file (*.rpm) or a URL is refused: dom0 installs only
from the verified cached repository.

options:
  --action=ACT          dnf verb: upgrade (default), install, reinstall,
                        downgrade, remove (update and upgrade-to are
                        upgrade, as in dnf);
                        list, search and info are answered by the UpdateVM
                        alone
  --check-only          only ask whether updates exist: exit 100 if they do,
                        0 if not; installs nothing. The answer is the
                        UpdateVM's word alone: nothing reaches dom0, so no
                        signed metadata is checked (an upgrade checks it)
  --clean               empty dom0's cached repository and the UpdateVM's
                        download cache first
  --downloadonly        receive and verify, but do not install
  --enablerepo=R        enable repository R in the UpdateVM (dom0 installs
                        from its cached repository only)
  --disablerepo=R       disable repository R in the UpdateVM
  --releasever=VER      dnf's $releasever for this run, on both sides (a
                        distribution upgrade); updates.conf's otherwise
  --allow-downgrade     needed with --action=downgrade before an older
                        version may be installed; with any other action a
                        usage error
  --json                print the final result as one JSON object on stdout,
                        and nothing else there (the listing of list, search
                        and info goes to stderr); usage errors too; with
                        --help or --version, their text
  --root DIR            dom0's root prefix (tests; not for a real host)
  -y, --assumeyes       answer yes to dnf's questions
  --assumeno            dom0's dnf shows the transaction and answers no:
                        nothing changes in dom0 (exit 1, as dnf); the
                        verified packages stay in the cached repository
                        (not with -y, nor where no dnf runs in dom0:
                        --downloadonly, --check-only, queries)
  -x PKG, -xPKG, --exclude=PKG, --excludepkgs=PKG
                        exclude PKG (names or globs, comma-separated) on
                        both sides
  --best, -b, --nobest, --allowerasing, --skip-broken, --nodocs,
  --noautoremove, --obsoletes, --showduplicates, -q, --quiet, -v, --verbose
                        passed to dnf on both sides (--best or -b not with
                        --nobest). Any other option is a
                        usage error: none may turn dom0's signature checks
                        off or give it other repositories (as --nogpgcheck
                        or --setopt would)
  --                    ends pedos-dom0-update's own options: what follows
                        goes to dnf on both sides (the dnf options above and
                        package specs)
  --console, --show-output, --preserve-terminal, --gui, --nogui,
  --force-xen-upgrade   accepted for compatibility; no effect
  --refresh             accepted; dnf always refreshes the metadata, on
                        both sides
  -h, --help            print this help and exit
  --version             print the release and commit, and exit

A value follows its option after "=" or as the next word: --exclude=kernel
or --exclude kernel, --action=install or --action install.

With PACKAGEs, or an action other than upgrade, dnf runs in dom0 even when
nothing was delivered: it then says whether the request is already met or
fails on what the UpdateVM did not deliver.

exit status: 0 done or nothing to do; 1 failure (the message says what and
where); 2 usage error; 100 updates available (--check-only); 125 qrexec
failure; 126 call refused by policy, or by dom0's receive service before it
read anything (a policy file dom0 cannot read, a syntax error, is 1: a
configuration error, found before any call).

examples:
  pedos-dom0-update                       # all updates, asks before installing
  pedos-dom0-update -y                    # all updates, no questions
  pedos-dom0-update --check-only          # exit 100 if updates exist
  pedos-dom0-update --check-only --json | jq -r '.available[]?.nevra'
  pedos-dom0-update --action=install hello
  pedos-dom0-update --downloadonly --json # verify only, report as JSON
  pedos-dom0-update --action=downgrade --allow-downgrade libfoo-1.0-1

files: /etc/pedos/updates.conf (UpdateVM, limits, pinned metadata keys),
/var/lib/PedOS/updates (the cached repository), /var/lib/PedOS/state (session,
result, freshness), /var/log/pedos/updates.log (one JSON line per event).
`

func main() {
	os.Exit(run())
}

func run() int {
	o, err := frontend.ParseArgs(os.Args[1:])
	if o.Help {
		fmt.Print(usage)
		return frontend.ExitOK
	}
	if o.Version {
		fmt.Println(release.Line("pedos-dom0-update"))
		return frontend.ExitOK
	}
	// A usage error is logged too, below the --root the line names
	// (ParseArgs reads it however the parse ends), where that root's
	// configuration says (its defaults if it cannot be read).
	config, configErr := dom0.LoadConfig(o.Root)
	fail := func(code int, err error) int {
		// An updates.conf that cannot be read names no UpdateVM: the
		// default would be a guess in the report and the log.
		updateVM := config.UpdateVM
		if configErr != nil {
			updateVM = ""
		}
		rep := frontend.NewReport(o, updateVM)
		rep.Exit = code
		return frontend.Conclude(config, o, rep, err, os.Stdout, os.Stderr)
	}
	if err != nil {
		defer fmt.Fprintln(os.Stderr, "Try 'pedos-dom0-update --help'.")
		return fail(frontend.ExitUsage, err)
	}
	if configErr != nil {
		return fail(frontend.ExitFailure, configErr)
	}
	if o.Action != "remove" { // dom0's dnf alone, no call
		if err := frontend.CheckQrexecClient(config); err != nil {
			return fail(frontend.ExitFailure, err)
		}
	}
	tools, err := dnftool.New("")
	if err != nil {
		return fail(frontend.ExitFailure, err)
	}
	defer tools.Close()
	// A closed terminal (SIGHUP) ends the run as Ctrl-C does: the session
	// is cancelled, not left behind. Under nohup it is ignored, as it was.
	stopOn := []os.Signal{syscall.SIGTERM, os.Interrupt}
	if !signal.Ignored(syscall.SIGHUP) {
		stopOn = append(stopOn, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopOn...)
	defer stop()
	// Only the qrexec-client installed beside this program is ours, with
	// --errors-fd; a host's own (configured, or found in PATH) is not.
	client := qrexecClient(config)
	env := frontend.Env{
		Config: config,
		VM: frontend.QrexecCaller{Client: client, OwnErrors: config.QrexecClient == "" && filepath.IsAbs(client),
			Timeout: config.ReceiveTimeout + config.ReceiveTimeout/10},
		Tools:           tools,
		Stdin:           os.Stdin,
		Stdout:          os.Stdout,
		Stderr:          os.Stderr,
		DownloadCommand: "pedos-download-dom0-updates",
	}
	return frontend.Run(ctx, o, env)
}

// qrexecClient is updates.conf's qrexec_client, else ours.
func qrexecClient(c dom0.Config) string {
	if c.QrexecClient != "" {
		return c.QrexecClient
	}
	return programs.Find("qrexec-client")
}
