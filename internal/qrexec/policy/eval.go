package policy

import (
	"fmt"
	"strings"
)

type tokenKind int

const (
	noToken   tokenKind = iota
	nameToken           // a domain name (dom0 is adminToken)
	anyVMToken
	adminToken
	defaultToken
	tagToken
	typeToken
	dispVMToken   // @dispvm: the source's default disposable template
	dispVMOfToken // @dispvm:NAME
)

type token struct {
	kind  tokenKind
	value string // the name, tag, type or template
}

// Where each token may appear (the Qubes policy format's table).
var (
	sourceTokens   = []tokenKind{nameToken, anyVMToken, adminToken, tagToken, typeToken, dispVMOfToken}
	targetTokens   = []tokenKind{nameToken, anyVMToken, adminToken, defaultToken, tagToken, typeToken, dispVMToken, dispVMOfToken}
	redirectTokens = []tokenKind{nameToken, adminToken, dispVMToken, dispVMOfToken}
)

func parseToken(s string, allowed []tokenKind) (token, error) {
	var t token
	switch {
	case s == Dom0 || s == "@adminvm":
		t = token{kind: adminToken}
	case s == "@anyvm":
		t = token{kind: anyVMToken}
	case s == "@default":
		t = token{kind: defaultToken}
	case s == "@dispvm":
		t = token{kind: dispVMToken}
	case strings.HasPrefix(s, "@tag:") && onlyChars(s[5:], "_.-", 1):
		t = token{kind: tagToken, value: s[5:]}
	case strings.HasPrefix(s, "@type:") && onlyChars(s[6:], "_", 1):
		t = token{kind: typeToken, value: s[6:]}
	case strings.HasPrefix(s, "@dispvm:") && ValidDomainName(s[8:]):
		t = token{kind: dispVMOfToken, value: s[8:]}
	case ValidDomainName(s):
		t = token{kind: nameToken, value: s}
	case strings.HasPrefix(s, "@dispvm:@tag:"):
		return t, fmt.Errorf("%s: @dispvm:@tag: is not supported (docs/qrexec-policy.md)", Quoted(s))
	default:
		return t, fmt.Errorf("invalid domain specification %s", Quoted(s))
	}
	for _, k := range allowed {
		if t.kind == k {
			return t, nil
		}
	}
	return t, fmt.Errorf("%s is not allowed here", Quoted(s))
}

// Request is a call to decide: the caller's domain (known to dom0 from the
// connection, never from the caller), and the target, service and argument
// the caller asked for, already checked with ValidRequestedTarget,
// ValidService and ValidArgument.
type Request struct {
	Source, Target, Service, Argument string
}

// Decision is the outcome of Evaluate.
type Decision struct {
	Allow bool
	// Target is where to run an allowed call: a domain name, "dom0", or
	// "@dispvm:TEMPLATE" for a new disposable domain.
	Target    string
	User      string // from user=; empty for the target's default
	Notify    bool
	Autostart bool
	Rule      string // FILE:LINE of the deciding rule; empty if none matched
	Reason    string // why a call was denied, for the log
}

// Evaluate decides req: the first matching rule wins, no match denies.
func (p *Policy) Evaluate(req Request, domains *Domains) Decision {
	requested := req.Target
	if requested == Dom0 {
		requested = "@adminvm"
	}
	for _, r := range p.rules {
		if (r.service == "*" || r.service == req.Service) &&
			(r.argument == "*" || r.argument == "+"+req.Argument) &&
			r.source.matchSource(req.Source, domains) &&
			r.target.matchTarget(requested, req.Source, domains) {
			d := r.decide(requested, req.Source, domains)
			d.Rule = r.where
			return d
		}
	}
	return Decision{Reason: "no rule matches"}
}

func (r rule) decide(requested, source string, domains *Domains) Decision {
	switch r.action {
	case Deny:
		return Decision{Reason: "denied by policy", Notify: r.notify}
	case Ask:
		return Decision{Reason: "ask: no one to ask here, treated as deny"}
	}
	target := requested
	if r.redirect.kind != noToken {
		target = r.redirect.String()
	}
	src, _ := domains.Lookup(source)
	switch {
	case target == "@default":
		return Decision{Reason: "allow for @default needs target="}
	case target == "@adminvm":
		target = Dom0
	case target == "@dispvm" && src.DefaultDispVM == "":
		return Decision{Reason: fmt.Sprintf("@dispvm: %s has no default_dispvm", source)}
	case target == "@dispvm":
		target = "@dispvm:" + src.DefaultDispVM
	}
	if target == "@dispvm:"+Dom0 {
		// A disposable domain made from dom0 would be a second dom0, whatever
		// the policy says; default_dispvm cannot name dom0 either.
		return Decision{Reason: "dom0 is no template for disposable domains"}
	}
	if _, ok := domains.Lookup(strings.TrimPrefix(target, "@dispvm:")); !ok {
		return Decision{Reason: fmt.Sprintf("no such domain %q", target)}
	}
	return Decision{Allow: true, Target: target, User: r.user, Notify: r.notify, Autostart: r.autostart}
}

func (t token) String() string {
	switch t.kind {
	case nameToken:
		return t.value
	case adminToken:
		return "@adminvm"
	case dispVMToken:
		return "@dispvm"
	case dispVMOfToken:
		return "@dispvm:" + t.value
	}
	return fmt.Sprintf("token(%d)", t.kind) // not reachable for redirect tokens
}

func (t token) matchSource(source string, domains *Domains) bool {
	dom, ok := domains.Lookup(source)
	switch t.kind {
	case nameToken:
		return source == t.value
	case anyVMToken:
		return source != Dom0
	case adminToken:
		return source == Dom0
	case dispVMOfToken:
		return ok && dom.Type == "DispVM" && dom.Template == t.value
	}
	// dom0 is matched only by name (dom0, @adminvm), as in Qubes: a rule
	// for a tag or type never reaches it, even if domains.conf tags it.
	return ok && source != Dom0 && dom.hasTagOrType(t)
}

// matchTarget matches the target as the caller asked for it (@adminvm for
// dom0), before any target= redirection.
func (t token) matchTarget(requested, source string, domains *Domains) bool {
	dom, ok := domains.Lookup(strings.Replace(requested, "@adminvm", Dom0, 1))
	src, _ := domains.Lookup(source)
	switch t.kind {
	case nameToken:
		return requested == t.value
	case anyVMToken: // anything but dom0: @default and disposable ones included, as in Qubes
		return requested != "@adminvm"
	case adminToken:
		return requested == "@adminvm"
	case defaultToken:
		return requested == "@default"
	case dispVMToken:
		return requested == "@dispvm"
	case dispVMOfToken:
		return requested == "@dispvm:"+t.value || requested == "@dispvm" && src.DefaultDispVM == t.value
	}
	// dom0 is matched only by name (dom0, @adminvm), as in Qubes: a rule
	// for a tag or type (@type:AdminVM too) never reaches it. Else one
	// broad tag rule, with dom0 tagged, would open every dom0 service.
	return ok && requested != "@adminvm" && dom.hasTagOrType(t)
}

func (dom Domain) hasTagOrType(t token) bool {
	switch t.kind {
	case tagToken:
		for _, tag := range dom.Tags {
			if tag == t.value {
				return true
			}
		}
	case typeToken:
		return dom.Type == t.value
	}
	return false
}
