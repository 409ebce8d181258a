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
