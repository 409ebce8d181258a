// Package release is what a build records about itself, for --version: set at build time by
// the Makefile and scripts/packages.sh (-X pedos.dev/updates/internal/release.name=...). It is
// its own package, with nothing else in it, so that dom0's trusted programs can say their
// version without linking the command-line helpers of the others.
package release

import "fmt"

// The release (packaging/VERSION), the commit (git describe --always --dirty: "-dirty" when the
// tree had uncommitted changes) and the commit's time. A plain go build, such as the tests',
// sets none of them.
var name, commit, commitTime string

// Line is the line --version prints: the command, its release and the commit it was built
// from, with that commit's time.
func Line(command string) string {
	if name == "" {
		return command + " (development build: no release or commit recorded)"
	}
	if commit == "" {
		return command + " " + name
	}
	return fmt.Sprintf("%s %s (commit %s, %s)", command, name, commit, commitTime)
}
