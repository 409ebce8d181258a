// Command pedos-run runs a command in a domain from dom0 with its input and
// output passed through, like qvm-run --pass-io (spec/qrexec.md).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/qrexec/policy"
)

const usage = `Usage: pedos-run [options] DOMAIN [--] COMMAND [ARGS...]

Runs COMMAND ARGS... (joined with spaces into one /bin/sh -c command line,
as ssh does) in DOMAIN, with this command's stdin, stdout and stderr
connected and the command's exit status as ours. It is qrexec-client -d
DOMAIN USER:COMMAND with friendlier arguments.

Options:
  --user USER        run as USER (default DEFAULT: whoever the agent runs as)
  --domains FILE     domains configuration (default /etc/pedos/domains.conf)
  --sockdir DIR      per-domain socket directories (default /run/pedos/qrexec)
  --timeout DUR      give up after DUR, exit 125 (default: no limit; the
                     agent must still answer the request within 10s)
  --no-stdin         send the command EOF on stdin at once
  --filter-escape-chars, --no-filter-escape-chars
                     replace (or not) with "_" what a terminal would act on
                     in the command's output: escape sequences, other
                     control characters but newline and tab, bytes that are
                     not UTF-8, and outside a UTF-8 locale any byte that
                     is not ASCII (default: on stdout and stderr that are
                     terminals, so that the domain cannot drive dom0's)
  --version          print the release and commit, and exit

Exit status: the command's; 125 qrexec failure (including the timeout, and a
USER the domain has not or the agent may not switch to); 2 usage error.

Examples:
  pedos-run sys-firewall uname -a
  pedos-run sys-firewall -- ls -l /var/cache
  tar -c -C /var/lib/rpm . | pedos-run --user root sys-firewall 'mkdir -p /tmp/rpmdb && tar -x -C /tmp/rpmdb'
`

func main() {
	qrexec.OneProcessor()
	cli := cmdline.Usage{Command: "pedos-run", Text: usage}
	fs := cli.FlagSet()
	user := fs.String("user", "DEFAULT", "")
	domainsFile := fs.String("domains", policy.DefaultDomainsFile, "")
	sockDir := fs.String("sockdir", qrexec.SocketDir, "")
	timeout := fs.Duration("timeout", 0, "")
	noStdin := fs.Bool("no-stdin", false, "")
	filter := fs.Bool("filter-escape-chars", false, "")
	noFilter := fs.Bool("no-filter-escape-chars", false, "")
	cli.Parse(fs, os.Args[1:])
	domain, command := fs.Arg(0), fs.Args()[min(1, fs.NArg()):]
	ended := len(command) > 0 && command[0] == "--" // the end of the options, as before DOMAIN
	if ended {
		command = command[1:]
	}
	switch {
	case fs.NArg() == 0 || len(command) == 0:
		cli.Fail("want DOMAIN and COMMAND")
	case !ended && ownOption(fs, command[0]):
		// Run as the command, the option would fail in the domain's
		// shell with the status of a usage error, 2, as if ours.
		cli.Fail("%s comes after DOMAIN, where the command begins: put pedos-run's options before DOMAIN (or write DOMAIN -- %s to run a command of that name)", command[0], command[0])
	case *filter && *noFilter:
		cli.Fail("--filter-escape-chars and --no-filter-escape-chars contradict each other: give one")
	case !policy.ValidDomainName(domain):
		cli.Fail("domain %q: %s", domain, policy.ValidDomainNameRule)
	case !policy.ValidUser(*user):
		cli.Fail("--user %q: %s", *user, policy.ValidUserRule)
	case strings.TrimSpace(strings.Join(command, " ")) == "":
		// The agent refuses it (126) and says why only in its log.
		cli.Fail("COMMAND is empty")
	case *timeout < 0:
		cli.Fail("--timeout %v is negative (no --timeout: no limit)", *timeout)
	}
	call := qrexec.CommandCall{
		DomainsFile: *domainsFile, SockDir: *sockDir, Domain: domain,
		User: *user, Command: strings.Join(command, " "), Timeout: *timeout,
	}
	streams := qrexec.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if *noStdin {
		streams.Stdin = nil
	}
	var filters []*cmdline.EscapeFilter
	for _, out := range []*io.Writer{&streams.Stdout, &streams.Stderr} {
		if *filter || !*noFilter && cmdline.IsTerminal(*out) {
			f := &cmdline.EscapeFilter{W: *out, ASCII: !cmdline.UTF8Locale()}
			*out = f
			filters = append(filters, f)
		}
	}
	code, err := call.Run(streams)
	for _, f := range filters {
		f.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pedos-run:", err)
	}
	os.Exit(code)
}

// ownOption says whether word is one of pedos-run's options (-user, --user,
// --user=root, ...).
func ownOption(fs *flag.FlagSet, word string) bool {
	name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(word, "-"), "-"), "=")
	return strings.HasPrefix(word, "-") && (fs.Lookup(name) != nil || name == "h" || name == "help")
}
