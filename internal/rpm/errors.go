package rpm

import "fmt"

// Kind is the class of a rejection, so callers can tell an attack from a
// configuration problem without parsing messages (style.md, go-tuf model).
// Its value is its name, as the result and pedos-rpmcheck print it.
type Kind string

// Rejection classes; threats.md ids in the comments.
const (
	KindMalformed         Kind = "malformed"          // not a well-formed RPM v4 file (P8, P9)
	KindUnsigned          Kind = "unsigned"           // no header signature at all (P1)
	KindUntrustedKey      Kind = "untrusted key"      // signed only by keys outside the keyring (P2)
	KindBadSignature      Kind = "bad signature"      // a signature does not verify (P3)
	KindDigestMismatch    Kind = "digest mismatch"    // header or payload digest does not match (P3)
	KindForbiddenTag      Kind = "forbidden tag"      // signature tag in the main header, unknown tag in the signature header (P4, P5)
	KindWeakAlgorithm     Kind = "weak algorithm"     // SHA-1, MD5, DSA, RSA < 2048 (P7)
	KindKeyNotValid       Kind = "key not valid"      // key or signature revoked, expired or badly bound (P6)
	KindBadName           Kind = "bad file name"      // file name fails CheckFileName (P10), or is not the package's own (P9)
	KindVerifiersDisagree Kind = "verifiers disagree" // native verifier and rpmkeys disagree: a security error
	KindIO                Kind = "i/o error"          // reading or writing failed; not a verdict about the package
)

func (k Kind) String() string { return string(k) }

// Error is a rejection: its Kind says the class, its message what was found.
type Error struct {
	Kind   Kind
	Reason string
	Err    error // underlying cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

func reject(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) *Error {
	return reject(KindMalformed, format, args...)
}
