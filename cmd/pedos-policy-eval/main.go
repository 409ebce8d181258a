// Command pedos-policy-eval says what dom0's qrexec policy decides for a
// call, for people checking their policy and for tests.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/qrexec/policy"
)

const usage = `Usage: pedos-policy-eval [options] SOURCE TARGET SERVICE[+ARG]

Evaluates the policy for a call from SOURCE to TARGET (a domain, dom0,
@adminvm, @default, @dispvm or @dispvm:NAME), as qrexec-daemon would, and
prints
  allow target=T [user=U] [notify=yes] [autostart=yes]   exit 0
  deny [notify=yes]                                      exit 126
The reason for a deny and the deciding rule go to stderr. notify= and
autostart= are only reported: nothing is notified or started.

An invalid SOURCE, TARGET, SERVICE or ARG is denied before the policy, and
stderr says which. A SOURCE that is not in the domains configuration is
denied (the daemon serves no such domain, so no call comes from it); a
TARGET that is not there is warned about on stderr and left to the policy.

Options:
  --policy-dir DIR   policy files (default /etc/pedos/policy.d)
  --domains FILE     domains configuration (default /etc/pedos/domains.conf;
                     a missing file means no domain but dom0 is known, and a
                     deny or warning naming another domain says so)
  --version          print the release and commit, and exit

Exit status: 0 allow; 126 deny; 2 usage error, or the domains configuration
or the policy cannot be loaded (a syntax error, an unreadable file: printed
with the file and line).

Example:
  pedos-policy-eval sys-firewall dom0 PedOS.ReceiveUpdates+0123abcd
`

func main() {
	cli := cmdline.Usage{Command: "pedos-policy-eval", Text: usage}
	fs := cli.FlagSet()
	policyDir := fs.String("policy-dir", policy.DefaultDir, "")
	domainsFile := fs.String("domains", policy.DefaultDomainsFile, "")
	cli.Parse(fs, os.Args[1:])
	if fs.NArg() != 3 {
		cli.Fail("want SOURCE TARGET SERVICE[+ARG], got %d argument(s)", fs.NArg())
	}
	service, argument := qrexec.SplitService(fs.Arg(2))
	req := policy.Request{Source: fs.Arg(0), Target: fs.Arg(1), Service: service, Argument: argument}
	if !policy.ValidDomainName(req.Source) {
		deny(fmt.Sprintf("invalid source %s: %s (refused before policy)", policy.Quoted(req.Source), policy.ValidDomainNameRule), "deny")
	}
	if err := policy.CheckRequested(req.Target, req.Service, req.Argument); err != nil {
		deny(err.Error()+" (refused before policy)", "deny")
	}
	// A missing file is no error (the daemon then serves dom0 alone), but
	// a person asking about a VM must learn why it is unknown.
	notADomain := "not a domain of " + *domainsFile
	if _, err := os.Stat(*domainsFile); errors.Is(err, os.ErrNotExist) {
		notADomain += ", which does not exist (only dom0 is known; --domains FILE reads another)"
	}
	domains, err := qrexec.DomainsOrDefault(*domainsFile)
	if err != nil {
		fatal(err)
	}
	pol, err := policy.Load(*policyDir)
	if err != nil {
		fatal(err)
	}
	if _, ok := domains.Lookup(req.Source); !ok {
		deny(fmt.Sprintf("source %s is %s: the daemon serves no such domain", req.Source, notADomain), "deny")
	}
	if req.Source == policy.Dom0 {
		fmt.Fprintln(os.Stderr, "pedos-policy-eval: note: dom0's own calls (qrexec-client, pedos-run) are not subject to policy: this is only what the rules say")
	}
	if name := strings.TrimPrefix(req.Target, "@dispvm:"); !strings.HasPrefix(name, "@") {
		if _, ok := domains.Lookup(name); !ok {
			fmt.Fprintf(os.Stderr, "pedos-policy-eval: warning: target %s is %s\n", name, notADomain)
		}
	}
	d := pol.Evaluate(req, domains)
	if !d.Allow {
		if d.Rule != "" {
			d.Reason += " at " + d.Rule
		}
		deny(d.Reason, "deny"+reported(d))
	}
	line := "allow target=" + d.Target
	if d.User != "" {
		line += " user=" + d.User
	}
	fmt.Println(line + reported(d))
}

// reported is what the decision says that nothing here acts on, as words
// for the output line.
func reported(d policy.Decision) string {
	var words string
	if d.Notify {
		words += " notify=yes"
	}
	if d.Autostart {
		words += " autostart=yes"
	}
	return words
}

// deny says on stderr why the call would be refused, prints line and exits
// 126.
func deny(why, line string) {
	fmt.Fprintln(os.Stderr, "pedos-policy-eval:", why)
	fmt.Println(line)
	os.Exit(qrexec.ExitRefused)
}

// fatal reports a configuration that cannot be loaded and exits 2.
func fatal(err error) {
	fmt.Fprintln(os.Stderr, "pedos-policy-eval:", err)
	os.Exit(2)
}
