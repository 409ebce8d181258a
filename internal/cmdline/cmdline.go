// Package cmdline gives the commands one convention for their usage text:
// help that a person asked for (-h, --help) goes to standard output with
// exit 0, where it can be paged or searched; a usage error says what is
// wrong, then prints the usage on standard error with exit 2, so that it
// never mixes with a command's output.
package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// ExitUsage is the exit status of a usage error.
const ExitUsage = 2

// Usage is a command's usage text.
type Usage struct {
	// Command names the command in messages ("qrexec-client").
	Command string
	// Text is the full usage, printed for --help.
	Text string
	// OnError, if set, is printed after a usage error instead of Text
	// (for a command whose usage is pages long: a line saying where the
	// help is).
	OnError string
}

// FlagSet returns a flag set for the command that prints nothing itself:
// Parse and Fail do the printing.
func (u Usage) FlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(u.Command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// Parse parses args with fs. For -h or --help it prints the usage on
// standard output and exits 0; for an option fs does not know, or a bad
// value, it fails as Fail does.
func (u Usage) Parse(fs *flag.FlagSet, args []string) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		u.Help()
	}
	if err != nil {
		u.Fail("%v", err)
	}
}

// ParseOptionsOnly is Parse for a command that takes no operands: a word
// left over is a usage error, never silently ignored.
func (u Usage) ParseOptionsOnly(fs *flag.FlagSet, args []string) {
	u.Parse(fs, args)
	if fs.NArg() != 0 {
		u.Fail("unexpected argument %q: every setting is an option", fs.Arg(0))
	}
}

// Help prints the usage on standard output and exits 0.
func (u Usage) Help() {
	fmt.Print(u.Text)
	os.Exit(0)
}

// Fail prints "COMMAND: " and the message, then the usage, on standard
// error and exits ExitUsage.
func (u Usage) Fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", u.Command, fmt.Sprintf(format, args...))
	if u.OnError != "" {
		fmt.Fprintln(os.Stderr, u.OnError)
	} else {
		fmt.Fprint(os.Stderr, u.Text)
	}
	os.Exit(ExitUsage)
}
