// Command pedos-run runs a command in a domain from dom0 with its input and
// output passed through, like qvm-run --pass-io (spec/qrexec.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/qrexec/policy"
)

const usage = `Usage: pedos-run [options] DOMAIN COMMAND [ARGS...]

Runs COMMAND ARGS... (joined with spaces into one /bin/sh -c command line,
as ssh does) in DOMAIN, with this command's stdin, stdout and stderr
connected and the command's exit status as ours. It is qrexec-client -d
DOMAIN USER:COMMAND with friendlier arguments.

Options:
  --user USER        run as USER (default DEFAULT: whoever the agent runs as)
  --domains FILE     domains configuration (default /etc/pedos/domains.conf)
  --sockdir DIR      per-domain socket directories (default /run/pedos/qrexec)
  --timeout DUR      give up after DUR, exit 125 (default: no limit)
  --no-stdin         send the command EOF on stdin at once

Exit status: the command's; 125 qrexec failure (including the timeout, and a
USER the domain has not or the agent may not switch to); 2 usage error.

Examples:
  pedos-run sys-firewall uname -a
  tar -c -C /var/lib/rpm . | pedos-run --user root sys-firewall 'tar -x -C /tmp/rpmdb'
`

func main() {
	qrexec.OneProcessor()
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	user := flag.String("user", "DEFAULT", "")
	domainsFile := flag.String("domains", "/etc/pedos/domains.conf", "")
	sockDir := flag.String("sockdir", "/run/pedos/qrexec", "")
	timeout := flag.Duration("timeout", 0, "")
	noStdin := flag.Bool("no-stdin", false, "")
	flag.Parse()
	if flag.NArg() < 2 || !policy.ValidDomainName(flag.Arg(0)) {
		flag.Usage()
		os.Exit(2)
	}
	if !policy.ValidUser(*user) {
		fmt.Fprintf(os.Stderr, "pedos-run: --user %q: %s\n", *user, policy.ValidUserRule)
		os.Exit(2)
	}
	call := qrexec.CommandCall{
		DomainsFile: *domainsFile, SockDir: *sockDir, Domain: flag.Arg(0),
		User: *user, Command: strings.Join(flag.Args()[1:], " "), Timeout: *timeout,
	}
	streams := qrexec.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if *noStdin {
		streams.Stdin = nil
	}
	code, err := call.Run(streams)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pedos-run:", err)
	}
	os.Exit(code)
}
