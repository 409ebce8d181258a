// Command qrexec-client runs a command in a domain from dom0, with stdin,
// stdout, stderr and the exit status passed through (spec/qrexec.md
// "Caller side"). Dom0's calls are not subject to policy.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/qrexec/policy"
)

const usage = `Usage: qrexec-client -d DOMAIN [options] USER:COMMAND

Runs COMMAND with /bin/sh -c as USER in DOMAIN (USER DEFAULT: whoever the
domain's agent runs as; else 1-32 characters of A-Z a-z 0-9 _ . -, not
starting with -), connecting this command's stdin, stdout and stderr.
The agent is reached at agent= of DOMAIN in the domains configuration, else
SOCKDIR/DOMAIN/agent.sock.

Options:
  -d DOMAIN          the domain to run in (required)
  --domains FILE     domains configuration (default /etc/pedos/domains.conf;
                     a missing file means defaults for every domain)
  --sockdir DIR      per-domain socket directories (default /run/pedos/qrexec)
  --timeout DUR      give up after DUR, exit 125 (default: no limit)

Exit status: the command's; 125 qrexec failure (including the timeout, and a
USER the domain has not or the agent may not switch to); 2 usage error.

Examples:
  qrexec-client -d sys-firewall root:'rpm -qa | wc -l'
  qrexec-client -d sys-firewall --timeout 30m user:'pedos-download-dom0-updates --session ID'
`

func main() {
	qrexec.OneProcessor()
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	domain := flag.String("d", "", "")
	domainsFile := flag.String("domains", "/etc/pedos/domains.conf", "")
	sockDir := flag.String("sockdir", "/run/pedos/qrexec", "")
	timeout := flag.Duration("timeout", 0, "")
	flag.Parse()
	user, command, ok := strings.Cut(flag.Arg(0), ":")
	if flag.NArg() != 1 || !ok || !policy.ValidDomainName(*domain) {
		flag.Usage()
		os.Exit(2)
	}
	if !policy.ValidUser(user) {
		fmt.Fprintf(os.Stderr, "qrexec-client: user %q: %s\n", user, policy.ValidUserRule)
		os.Exit(2)
	}
	call := qrexec.CommandCall{
		DomainsFile: *domainsFile, SockDir: *sockDir,
		Domain: *domain, User: user, Command: command, Timeout: *timeout,
	}
	code, err := call.Run(qrexec.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "qrexec-client:", err)
	}
	os.Exit(code)
}
