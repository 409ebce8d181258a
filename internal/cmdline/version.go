package cmdline

import (
	"flag"
	"fmt"
	"os"
)

// What --version says, set at build time by the Makefile and
// scripts/packages.sh (-X pedos.dev/updates/internal/cmdline.release=...):
// the release (packaging/VERSION), the commit (git describe --always
// --dirty: "-dirty" when the tree had uncommitted changes) and the commit's
// time. A plain go build, such as the tests', sets none of them.
var release, commit, commitTime string

// Version is the line --version prints: the command, its release and the
// commit it was built from, with that commit's time.
func Version(command string) string {
	if release == "" {
		return command + " (development build: no release or commit recorded)"
	}
	if commit == "" {
		return command + " " + release
	}
	return fmt.Sprintf("%s %s (commit %s, %s)", command, release, commit, commitTime)
}

// AddVersionFlag gives fs a --version option that prints the command's
// Version line on standard output and exits 0, as --help does.
func AddVersionFlag(fs *flag.FlagSet, command string) {
	fs.BoolFunc("version", "", func(string) error {
		fmt.Println(Version(command))
		os.Exit(0)
		return nil
	})
}
