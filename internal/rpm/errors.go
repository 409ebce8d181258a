package rpm

import "fmt"

// Kind is the class of a rejection, so callers can tell an attack from a
// configuration problem without parsing messages (style.md, go-tuf model).
type Kind int

// Rejection classes; threats.md ids in the comments.
const (
	KindMalformed         Kind = iota + 1 // not a well-formed RPM v4 file (P8, P9)
	KindUnsigned                          // no header signature at all (P1)
	KindUntrustedKey                      // signed only by keys outside the keyring (P2)
	KindBadSignature                      // a signature does not verify (P3)
	KindDigestMismatch                    // header or payload digest does not match (P3)
	KindForbiddenTag                      // signature tag in the main header, unknown tag in the signature header (P4, P5)
	KindWeakAlgorithm                     // SHA-1, MD5, DSA, RSA < 2048 (P7)
	KindKeyNotValid                       // key or signature revoked, expired or badly bound (P6)
	KindBadName                           // file name fails CheckFileName (P10), or is not the package's own (P9)
	KindVerifiersDisagree                 // native verifier and rpmkeys disagree: a security error
	KindIO                                // reading or writing failed; not a verdict about the package
)

var kindNames = map[Kind]string{
	KindMalformed:         "malformed",
	KindUnsigned:          "unsigned",
	KindUntrustedKey:      "untrusted key",
	KindBadSignature:      "bad signature",
	KindDigestMismatch:    "digest mismatch",
	KindForbiddenTag:      "forbidden tag",
	KindWeakAlgorithm:     "weak algorithm",
	KindKeyNotValid:       "key not valid",
	KindBadName:           "bad file name",
	KindVerifiersDisagree: "verifiers disagree",
	KindIO:                "i/o error",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

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
