// Command qrexec-client runs a command in a domain from dom0, with stdin,
// stdout, stderr and the exit status passed through (spec/qrexec.md
// "Caller side"). Dom0's calls are not subject to policy.
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/cmdline"
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
  --timeout DUR      give up after DUR, exit 125 (default: no limit; the
                     agent must still answer the request within 10s)
  --errors-fd N      write this program's own error messages to descriptor N
                     (opened by the caller), so that stderr carries only the
                     command's (pedos-dom0-update tells the two apart so)
  --version          print the release and commit, and exit

Exit status: the command's; 125 qrexec failure (including the timeout, and a
USER the domain has not or the agent may not switch to); 2 usage error.

Examples:
  qrexec-client -d sys-firewall root:'rpm -qa | wc -l'
  qrexec-client -d sys-firewall --timeout 30m root:'pedos-download-dom0-updates --check-only'
`

func main() {
	qrexec.OneProcessor()
	cli := cmdline.Usage{Command: "qrexec-client", Text: usage}
	fs := cli.FlagSet()
	domain := fs.String("d", "", "")
	domainsFile := fs.String("domains", policy.DefaultDomainsFile, "")
	sockDir := fs.String("sockdir", qrexec.SocketDir, "")
	timeout := fs.Duration("timeout", 0, "")
	errorsFD := fs.Uint("errors-fd", 2, "")
	cli.Parse(fs, os.Args[1:])
	user, command, ok := strings.Cut(fs.Arg(0), ":")
	switch {
	case *domain == "":
		cli.Fail("-d DOMAIN is required")
	case !policy.ValidDomainName(*domain):
		cli.Fail("-d %q: %s", *domain, policy.ValidDomainNameRule)
	case fs.NArg() != 1:
		cli.Fail("want one USER:COMMAND argument, got %d", fs.NArg())
	case !ok:
		cli.Fail("%q: want USER:COMMAND (DEFAULT:COMMAND runs as the agent's user)", fs.Arg(0))
	case !policy.ValidUser(user):
		cli.Fail("user %q: %s", user, policy.ValidUserRule)
	case strings.TrimSpace(command) == "":
		// The agent refuses it (126) and says why only in its log.
		cli.Fail("%q: the COMMAND after USER: is empty", fs.Arg(0))
	case *timeout < 0:
		cli.Fail("--timeout %v is negative (no --timeout: no limit)", *timeout)
	}
	call := qrexec.CommandCall{
		DomainsFile: *domainsFile, SockDir: *sockDir,
		Domain: *domain, User: user, Command: command, Timeout: *timeout,
	}
	ownErrors := os.Stderr
	if fd := int(*errorsFD); fd != 2 {
		// Not passed on to what the call starts (an agent=exec: command,
		// which would keep the caller waiting for the descriptor's end);
		// one that is not open for writing leaves the errors on stderr, not
		// lost: the Go runtime itself may hold a read-only 3 or 4 (the
		// cgroup's CPU quota) when the caller passed none.
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil && flags&unix.O_ACCMODE != unix.O_RDONLY {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err == nil {
				ownErrors = os.NewFile(uintptr(fd), "errors")
			}
		}
	}
	code, err := call.Run(qrexec.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(ownErrors, "qrexec-client:", err)
	}
	os.Exit(code)
}
