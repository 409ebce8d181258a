package cmdline

import (
	"flag"
	"fmt"
	"os"

	"pedos.dev/updates/internal/release"
)

// AddVersionFlag gives fs a --version option that prints the command's
// release line on standard output and exits 0, as --help does.
func AddVersionFlag(fs *flag.FlagSet, command string) {
	fs.BoolFunc("version", "", func(string) error {
		fmt.Println(release.Line(command))
		os.Exit(0)
		return nil
	})
}
