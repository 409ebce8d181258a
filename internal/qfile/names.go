package qfile

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// validName applies the name rules of spec "Receiver rules" (S1, S2).
func validName(untrustedName []byte) bool { return nameProblem(untrustedName) == "" }

// nameProblem says which rule untrustedName breaks, without quoting it, or "" if none: a
// relative path of non-empty components other than "." and "..", without a trailing "/", made
// of printable ASCII or of UTF-8 letters, numbers, punctuation and symbols. Those four Unicode
// classes exclude controls, format characters (the bidi overrides among them), private-use and
// unassigned code points, and invalid UTF-8.
func nameProblem(untrustedName []byte) string {
	switch {
	case len(untrustedName) == 0:
		return "the name is empty"
	case untrustedName[0] == '/':
		return "the name is absolute"
	case untrustedName[len(untrustedName)-1] == '/':
		return "the name ends with /"
	}
	for component := range bytes.SplitSeq(untrustedName, []byte("/")) {
		if s := string(component); s == "" || s == "." || s == ".." {
			return `the name has an empty, '.' or '..' component`
		}
	}
	for b := untrustedName; len(b) > 0; {
		if b[0] >= 0x20 && b[0] <= 0x7e {
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			return fmt.Sprintf("the name is not valid UTF-8 (byte %#02x)", b[0])
		}
		if !unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) {
			return fmt.Sprintf("the name holds %U, which is not a letter, number, punctuation or symbol", r)
		}
		b = b[size:]
	}
	return ""
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
