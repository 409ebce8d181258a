package frontend

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/qrexec/policy"
	"pedos.dev/updates/internal/updatecall"
)

// checkDeliveryPolicy asks dom0's qrexec policy, before anything is
// downloaded, whether the UpdateVM may call PedOS.ReceiveUpdates (overview.md
// step 4), in dom0 and as root. The daemon asks again at the call; without
// this, a policy that names another UpdateVM, or one with a syntax error
// (which fails every call closed, C5), would show only after the whole
// download, as a bare 126.
// It reads where this project's qrexec daemon reads by default. A
// PedOS/Qubes host's own qrexec reads /etc/qubes/policy.d and knows its
// domains itself: the install there leaves out our domains.conf
// (deploy-qubes.md), and may keep our policy.d, so where either is missing
// nothing of ours decides and the check is skipped. allowedBy is the rule
// that allows the call ("" where nothing of ours decides).
func checkDeliveryPolicy(c dom0.Config) (allowedBy string, code int, err error) {
	dir, domainsFile := c.Path(policy.DefaultDir), c.Path(policy.DefaultDomainsFile)
	for _, ours := range []string{dir, domainsFile} {
		if _, err := os.Stat(ours); errors.Is(err, fs.ErrNotExist) {
			return "", ExitOK, nil
		}
	}
	pol, err := policy.Load(dir)
	if err != nil {
		return "", ExitFailure, fmt.Errorf("dom0's qrexec policy refuses every call until it is fixed (nothing was downloaded): %w", err)
	}
	domains, err := policy.LoadDomains(domainsFile)
	if err != nil {
		return "", ExitFailure, err
	}
	// A domain the daemon does not serve is one qrexec cannot reach: 125,
	// as the call to it would end.
	if _, ok := domains.Lookup(c.UpdateVM); !ok {
		return "", ExitQrexecFailure, fmt.Errorf("%s (updatevm in %s) is not a domain of %s: dom0's qrexec daemon serves no such domain, so it can neither run the download there nor take a delivery from it; nothing was downloaded", c.UpdateVM, dom0.ConfigPath, policy.DefaultDomainsFile)
	}
	d := pol.Evaluate(policy.Request{Source: c.UpdateVM, Target: policy.Dom0, Service: updatecall.ReceiveService,
		Argument: strings.Repeat("0", dom0.SessionIDLength)}, domains)
	if !d.Allow {
		rule := ""
		if d.Rule != "" {
			rule = " at " + d.Rule
		}
		return "", ExitRefused, fmt.Errorf("dom0's qrexec policy in %s does not let %s (updatevm in %s) call %s: %s%s; nothing was downloaded", policy.DefaultDir, c.UpdateVM, dom0.ConfigPath, updatecall.ReceiveService, d.Reason, rule)
	}
	// An allow is not enough: the daemon runs the call where and as the
	// rule says. Elsewhere than in dom0 the delivery never reaches the
	// receive service (the download would end "failed (exit 1)"); as
	// another user than root the service cannot take its lock nor publish
	// the cached repository (it drops to unpacker_user itself), and the
	// call would end a bare 126.
	switch {
	case d.Target != policy.Dom0:
		return "", ExitFailure, fmt.Errorf("dom0's qrexec policy at %s sends %s's calls of %s to %s (target=), not to dom0, whose receive service takes deliveries; allow them with target dom0; nothing was downloaded", d.Rule, c.UpdateVM, updatecall.ReceiveService, d.Target)
	case d.User != "" && d.User != "root":
		return "", ExitFailure, fmt.Errorf("dom0's qrexec policy at %s runs %s's calls of %s as user %s: pedos-receive-updates must run as root (it drops to unpacker_user itself for the unpacking); leave user= out or write user=root; nothing was downloaded", d.Rule, c.UpdateVM, updatecall.ReceiveService, d.User)
	}
	return d.Rule, ExitOK, nil
}
