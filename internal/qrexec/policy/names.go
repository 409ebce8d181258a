// Package policy parses and evaluates qrexec policy files (docs/qrexec-policy.md,
// spec/qrexec.md "Policy") and the dom0 configuration of the domains they name.
// It does no I/O beyond reading those files and never runs anything.
package policy

import (
	"fmt"
	"strings"
)

// Dom0 is the name of the administrative domain; @adminvm is its keyword.
const Dom0 = "dom0"

// ValidService reports whether s is a service name the spec allows: 1–64
// characters of [A-Za-z0-9_.-]. "." and ".." are refused as well because a
// service name becomes a file name in the service directory (C4).
func ValidService(s string) bool {
	return len(s) <= 64 && s != "." && s != ".." && onlyChars(s, "_.-", 1)
}

// ValidServiceRule and ValidArgumentRule say which names ValidService and
// ValidArgument take, for error messages.
const (
	ValidServiceRule  = "a service name is 1-64 characters of A-Z a-z 0-9 _ . -, and not . or .."
	ValidArgumentRule = "a service argument is at most 64 characters of A-Z a-z 0-9 _ . + -"
)

// ValidArgument reports whether s is a service argument the spec allows: at
// most 64 characters of [A-Za-z0-9_.+-]; empty means no argument (C4).
func ValidArgument(s string) bool {
	return len(s) <= 64 && onlyChars(s, "_.+-", 0)
}

// ValidDomainNameRule says which names ValidDomainName takes, for error
// messages.
const ValidDomainNameRule = "a domain name is a letter, then up to 30 characters of A-Z a-z 0-9 _ . -"

// ValidDomainName reports whether s can name a domain: a letter, then up to
// 30 characters of [A-Za-z0-9_.-].
func ValidDomainName(s string) bool {
	return len(s) <= 31 && onlyChars(s, "_.-", 1) && isLetter(s[0])
}

// ValidUserRule says which names ValidUser takes, for error messages.
const ValidUserRule = "a user name is 1-32 characters of A-Z a-z 0-9 _ . -, not starting with -"

// ValidUser reports whether s can name a user account in a domain: 1–32
// characters of [A-Za-z0-9_.-], not starting with '-'.
func ValidUser(s string) bool {
	return len(s) <= 32 && onlyChars(s, "_.-", 1) && s[0] != '-'
}

// ValidRequestedTargetRule says which targets ValidRequestedTarget takes,
// for error messages.
const ValidRequestedTargetRule = "a target is a domain name, dom0, @adminvm, @default, @dispvm or @dispvm:NAME"

// ValidRequestedTarget reports whether a caller may name s as the target of
// a call: a domain name, @default, @adminvm, @dispvm or @dispvm:NAME.
func ValidRequestedTarget(s string) bool {
	switch s {
	case "@default", "@adminvm", "@dispvm":
		return true
	}
	if name, ok := strings.CutPrefix(s, "@dispvm:"); ok {
		return ValidDomainName(name)
	}
	return ValidDomainName(s)
}

// CheckRequested says which of the fields a caller names is invalid, if
// any, and the rule it breaks. The value is quoted and cut: it is for the
// caller's own messages, not dom0's log.
func CheckRequested(target, service, argument string) error {
	switch {
	case !ValidRequestedTarget(target):
		return fmt.Errorf("invalid target %s: %s", Quoted(target), ValidRequestedTargetRule)
	case !ValidService(service):
		return fmt.Errorf("invalid service name %s: %s", Quoted(service), ValidServiceRule)
	case !ValidArgument(argument):
		return fmt.Errorf("invalid service argument %s: %s", Quoted(argument), ValidArgumentRule)
	}
	return nil
}

// Quoted quotes a value for a message, cut after 64 bytes with a mark that
// says so: a cut value must not look like a valid one.
func Quoted(s string) string {
	if len(s) <= 64 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…(%d bytes)", s[:64], len(s))
}

// onlyChars reports whether s has at least min bytes, each an ASCII letter,
// digit or one of extra.
func onlyChars(s, extra string, min int) bool {
	if len(s) < min {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && (c < '0' || c > '9') && strings.IndexByte(extra, c) < 0 {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
