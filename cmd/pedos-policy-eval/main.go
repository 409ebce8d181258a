// Command pedos-policy-eval says what dom0's qrexec policy decides for a
// call, for people checking their policy and for tests.
package main

import (
	"fmt"
	"os"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/qrexec/policy"
)

const usage = `Usage: pedos-policy-eval [options] SOURCE TARGET SERVICE[+ARG]

Evaluates the policy for a call from SOURCE to TARGET (a domain, dom0,
@adminvm, @default, @dispvm or @dispvm:NAME) and prints
  allow target=T [user=U]   exit 0
  deny                      exit 126 (the reason and rule go to stderr)
A policy error (syntax, unreadable file) prints the file and line, exit 2.

Options:
  --policy-dir DIR   policy files (default /etc/pedos/policy.d)
  --domains FILE     domains configuration (default /etc/pedos/domains.conf;
                     a missing file means no domain but dom0 is known)

Example:
  pedos-policy-eval sys-firewall dom0 PedOS.ReceiveUpdates+0123abcd
`

func main() {
	cli := cmdline.Usage{Command: "pedos-policy-eval", Text: usage}
	fs := cli.FlagSet()
	policyDir := fs.String("policy-dir", "/etc/pedos/policy.d", "")
	domainsFile := fs.String("domains", "/etc/pedos/domains.conf", "")
	cli.Parse(fs, os.Args[1:])
	if fs.NArg() != 3 {
		cli.Fail("want SOURCE TARGET SERVICE[+ARG], got %d arguments", fs.NArg())
	}
	service, argument := qrexec.SplitService(fs.Arg(2))
	req := policy.Request{Source: fs.Arg(0), Target: fs.Arg(1), Service: service, Argument: argument}
	if !policy.ValidDomainName(req.Source) || !policy.ValidRequestedTarget(req.Target) ||
		!policy.ValidService(req.Service) || !policy.ValidArgument(req.Argument) {
		fmt.Fprintln(os.Stderr, "pedos-policy-eval: invalid source, target, service or argument (refused before policy)")
		fmt.Println("deny")
		os.Exit(qrexec.ExitRefused)
	}
	domains, err := qrexec.DomainsOrDefault(*domainsFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pedos-policy-eval:", err)
		os.Exit(2)
	}
	pol, err := policy.Load(*policyDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pedos-policy-eval:", err)
		os.Exit(2)
	}
	d := pol.Evaluate(req, domains)
	if !d.Allow {
		if d.Rule != "" {
			d.Reason += " at " + d.Rule
		}
		fmt.Fprintln(os.Stderr, "pedos-policy-eval:", d.Reason)
		fmt.Println("deny")
		os.Exit(qrexec.ExitRefused)
	}
	line := "allow target=" + d.Target
	if d.User != "" {
		line += " user=" + d.User
	}
	fmt.Println(line)
}
