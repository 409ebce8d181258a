// Package rpmver compares RPM versions the way rpm does (rpmvercmp, with
// the `~` and `^` separators) and checks epoch, version and release
// strictly. It is dom0 code: small, no I/O.
package rpmver

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// EVR is a checked epoch, version and release. Version and release are
// never empty and hold only the characters rpm allows in them.
type EVR struct {
	Epoch   uint32
	Version string
	Release string
}

// maxField caps version and release; real ones are a few dozen bytes.
const maxField = 128

// New checks the parts of an EVR as they appear in repository metadata
// (epoch="0" ver="1.2" rel="3.fc41"); an empty epoch means 0.
func New(untrustedEpoch, untrustedVersion, untrustedRelease string) (EVR, error) {
	var epoch uint64
	if untrustedEpoch != "" {
		if len(untrustedEpoch) > 10 || strings.Trim(untrustedEpoch, "0123456789") != "" {
			return EVR{}, errors.New("rpmver: epoch is not a decimal number")
		}
		var err error
		if epoch, err = strconv.ParseUint(untrustedEpoch, 10, 32); err != nil {
			return EVR{}, fmt.Errorf("rpmver: epoch: %w", err)
		}
	}
	if err := checkField("version", untrustedVersion); err != nil {
		return EVR{}, err
	}
	if err := checkField("release", untrustedRelease); err != nil {
		return EVR{}, err
	}
	return EVR{Epoch: uint32(epoch), Version: untrustedVersion, Release: untrustedRelease}, nil
}

// checkField allows what rpmbuild allows in a version or release
// (letters, digits and ._+~^), minus '%{}' which only occur unexpanded.
func checkField(what, untrusted string) error {
	if untrusted == "" || len(untrusted) > maxField {
		return fmt.Errorf("rpmver: %s is empty or longer than %d bytes", what, maxField)
	}
	for i := 0; i < len(untrusted); i++ {
		if c := untrusted[i]; !isAlnum(c) && !strings.ContainsRune("._+~^", rune(c)) {
			return fmt.Errorf("rpmver: %s has a character rpm does not allow (byte %d)", what, i)
		}
	}
	return nil
}

// String is the usual "epoch:version-release", without a zero epoch.
func (e EVR) String() string {
	if e.Epoch == 0 {
		return e.Version + "-" + e.Release
	}
	return fmt.Sprintf("%d:%s-%s", e.Epoch, e.Version, e.Release)
}

// Compare orders two EVRs as rpm does: epoch numerically, then version,
// then release with Vercmp. It returns -1, 0 or +1.
func Compare(a, b EVR) int {
	if c := cmp.Compare(a.Epoch, b.Epoch); c != 0 {
		return c
	}
	if c := Vercmp(a.Version, b.Version); c != 0 {
		return c
	}
	return Vercmp(a.Release, b.Release)
}

// Vercmp compares two version (or release) strings with rpm's rules: the
// strings are split into runs of digits and runs of ASCII letters, anything
// else separates runs; digit runs compare as numbers and beat letter runs;
// `~` sorts before everything, even the end of the string (1.0~rc1 < 1.0);
// `^` sorts after the end of the string but before anything else
// (1.0 < 1.0^git1 < 1.0.1). It returns -1, 0 or +1.
func Vercmp(a, b string) int {
	for {
		a = strings.TrimLeftFunc(a, isSeparator)
		b = strings.TrimLeftFunc(b, isSeparator)
		aTilde, bTilde := strings.HasPrefix(a, "~"), strings.HasPrefix(b, "~")
		aCaret, bCaret := strings.HasPrefix(a, "^"), strings.HasPrefix(b, "^")
		switch {
		case aTilde && bTilde, aCaret && bCaret:
			a, b = a[1:], b[1:]
			continue
		case aTilde:
			return -1
		case bTilde:
			return 1
		case aCaret && b == "", bCaret && a != "": // `^` sorts after the end, before a run
			return 1
		case aCaret, bCaret:
			return -1
		}
		if a == "" || b == "" {
			break
		}
		numeric := isDigit(a[0])
		aRun, aRest := splitRun(a, numeric)
		bRun, bRest := splitRun(b, numeric)
		if bRun == "" { // b's next run is of the other kind
			if numeric {
				return 1
			}
			return -1
		}
		if numeric {
			aRun, bRun = strings.TrimLeft(aRun, "0"), strings.TrimLeft(bRun, "0")
			if c := cmp.Compare(len(aRun), len(bRun)); c != 0 {
				return c
			}
		}
		if c := strings.Compare(aRun, bRun); c != 0 {
			return c
		}
		a, b = aRest, bRest
	}
	return cmp.Compare(len(a), len(b)) // one has ended: whatever is left wins
}

// splitRun cuts the leading run of digits (numeric) or letters from s.
func splitRun(s string, numeric bool) (run, rest string) {
	i := 0
	for i < len(s) && (numeric && isDigit(s[i]) || !numeric && isLetter(s[i])) {
		i++
	}
	return s[:i], s[i:]
}

func isSeparator(r rune) bool {
	return r > 0x7f || !isAlnum(byte(r)) && r != '~' && r != '^'
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool  { return isDigit(c) || isLetter(c) }

// The sense flags of an rpm dependency (rpmds.h) that say which side of its
// version a range covers; rpm sets other bits beside them.
const (
	SenseLess    = 2
	SenseGreater = 4
	SenseEqual   = 8
)

// InRange tells whether evr is in the range of a dependency with these
// sense flags and [EPOCH:]VERSION[-RELEASE], as rpm matches one: a missing
// epoch is 0, a missing release matches every release, and no comparison
// (or no version) covers every version. A version rpm would not write
// covers nothing.
func InRange(evr EVR, flags uint32, untrustedVersion string) bool {
	sense := flags & (SenseLess | SenseGreater | SenseEqual)
	if sense == 0 || untrustedVersion == "" {
		return true
	}
	epoch, rest, hasEpoch := strings.Cut(untrustedVersion, ":")
	if !hasEpoch {
		epoch, rest = "", untrustedVersion
	}
	version, release, hasRelease := strings.Cut(rest, "-")
	dep, err := New(epoch, version, cmp.Or(release, "0")) // the release is checked when there is one
	if err != nil || hasRelease && release == "" {
		return false
	}
	c := cmp.Compare(evr.Epoch, dep.Epoch)
	if c == 0 {
		c = Vercmp(evr.Version, dep.Version)
	}
	if c == 0 && hasRelease {
		c = Vercmp(evr.Release, dep.Release)
	}
	return c < 0 && sense&SenseLess != 0 || c == 0 && sense&SenseEqual != 0 || c > 0 && sense&SenseGreater != 0
}
