package rpm

import "regexp"

var fileNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+^~-]{0,255}\.rpm$`)

// CheckFileName accepts only package file names matching
// [A-Za-z0-9][A-Za-z0-9._+^~-]{0,255}\.rpm (verify.md §1, P10). The error
// never repeats the name: it may hold control characters meant for a log.
func CheckFileName(untrustedName string) error {
	if !fileNamePattern.MatchString(untrustedName) {
		return reject(KindBadName, "file name does not match [A-Za-z0-9][A-Za-z0-9._+^~-]{0,255}\\.rpm (name not shown)")
	}
	return nil
}

// CheckNameMatches refuses a package whose file name is not its own,
// NAME-VERSION-RELEASE.ARCH.rpm (P9): the UpdateVM and dnf go by names, so
// one package must not pass for another.
func (p *VerifiedPackage) CheckNameMatches(name string) error {
	if p.FileName() != name {
		// Quoted: a signed header's name may still hold a control character.
		return reject(KindBadName, "the file name does not match the package inside, %q: it would be %q (P9)", p.NEVRA(), p.FileName())
	}
	return nil
}
