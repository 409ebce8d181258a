// Package cmdline gives the commands one convention for their usage text:
// help that a person asked for (-h, --help) goes to standard output with
// exit 0, where it can be paged or searched; a usage error says what is
// wrong, then prints the usage on standard error with exit 2, so that it
// never mixes with a command's output.
package cmdline

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf16"
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
	// OnFail, if set, is given a usage error's message before the command
	// exits (a command's answer in JSON on stdout, for --json).
	OnFail func(message string)
}

// FlagSet returns a flag set for the command that prints nothing itself:
// Parse and Fail do the printing. It knows --version (AddVersionFlag).
func (u Usage) FlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(u.Command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	AddVersionFlag(fs, u.Command)
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
		u.Fail("%s", OptionError(fs, err))
	}
}

// OptionError says what the flag package's parse error err means, in the
// commands' own words: "unknown option --bogus" for "flag provided but not
// defined: -bogus", what a value must look like for "parse error". Options
// are named as the usage texts write them: one dash for a letter (-d), two
// for a word (--timeout). An error the flag package did not make (a Func
// option's) is said as it is.
func OptionError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Sprintf("unknown option %s", dashed(name))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Sprintf("option %s needs a value", dashed(name))
	}
	var value, name string
	if n, _ := fmt.Sscanf(msg, "invalid value %q for flag -%s", &value, &name); n == 2 {
		name = strings.TrimSuffix(name, ":")
		reason := strings.TrimPrefix(msg, fmt.Sprintf("invalid value %q for flag -%s: ", value, name))
		if f := fs.Lookup(name); f != nil && reason == "parse error" {
			reason = "want " + valueKind(f)
		}
		return fmt.Sprintf("%s %q: %s", dashed(name), value, reason)
	}
	if n, _ := fmt.Sscanf(msg, "invalid boolean value %q for -%s", &value, &name); n == 2 {
		return fmt.Sprintf("%s=%q: want true or false", dashed(strings.TrimSuffix(name, ":")), value)
	}
	return msg
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// valueKind says what an option of f's type takes.
func valueKind(f *flag.Flag) string {
	getter, _ := f.Value.(flag.Getter)
	if getter == nil {
		return "another value"
	}
	switch getter.Get().(type) {
	case time.Duration:
		return "a duration such as 30s, 10m or 1h"
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number"
	}
	return "another value"
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
	message := fmt.Sprintf(format, args...)
	if u.OnFail != nil {
		u.OnFail(message)
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", u.Command, message)
	if u.OnError != "" {
		fmt.Fprintln(os.Stderr, u.OnError)
	} else {
		fmt.Fprint(os.Stderr, u.Text)
	}
	os.Exit(ExitUsage)
}

// WriteJSON writes v to w as indented JSON and a newline, in ASCII: every
// character from DEL up is a \u escape (encoding/json escapes the C0
// controls itself), so that no string, whatever a domain put in it (C1
// controls such as U+009B, a terminal's CSI; bidi overrides), can act on a
// terminal that shows the output. An error in encoding v comes before
// anything is written.
func WriteJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	return writeASCII(w, data, err)
}

// WriteJSONLine is WriteJSON on one line, for output of one object per
// line (JSON Lines).
func WriteJSONLine(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	return writeASCII(w, data, err)
}

func writeASCII(w io.Writer, data []byte, err error) error {
	if err != nil {
		return err
	}
	var out strings.Builder
	for _, r := range string(data) { // encoding/json wrote valid UTF-8
		switch {
		case r < 0x7f:
			out.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&out, "\\u%04x\\u%04x", r1, r2)
		default:
			fmt.Fprintf(&out, "\\u%04x", r)
		}
	}
	out.WriteByte('\n')
	_, err = io.WriteString(w, out.String())
	return err
}
