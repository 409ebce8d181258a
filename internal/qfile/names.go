package qfile

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// validName applies the name rules of spec "Receiver rules" (S1, S2): a relative path of
// non-empty components other than "." and "..", without a trailing "/", made of printable
// ASCII or of UTF-8 letters, numbers, punctuation and symbols. Those four Unicode classes
// exclude controls, format characters (the bidi overrides among them), private-use and
// unassigned code points, and invalid UTF-8.
func validName(untrustedName []byte) bool {
	if len(untrustedName) == 0 || untrustedName[0] == '/' || untrustedName[len(untrustedName)-1] == '/' {
		return false
	}
	for component := range bytes.SplitSeq(untrustedName, []byte("/")) {
		if s := string(component); s == "" || s == "." || s == ".." {
			return false
		}
	}
	for b := untrustedName; len(b) > 0; {
		if b[0] >= 0x20 && b[0] <= 0x7e {
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if !unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) {
			return false
		}
		b = b[size:]
	}
	return true
}

// validSymlinkTarget reports whether a link called name (already valid) may point at
// untrustedTarget: relative and canonical (leading ".." components, then a valid name, or
// ".." components only), and never above the top-level directory holding the link (S5).
// A link at the top level may not climb at all.
func validSymlinkTarget(name string, untrustedTarget []byte) bool {
	ups := 0
	rest := untrustedTarget
	for bytes.HasPrefix(rest, []byte("../")) {
		ups++
		rest = rest[3:]
	}
	onlyUps := string(rest) == ".."
	if onlyUps {
		ups++
	}
	// "top/a/link" lives two levels below DIR and may climb one level, back to "top".
	if ups > max(strings.Count(name, "/")-1, 0) {
		return false
	}
	return onlyUps || validName(rest)
}
