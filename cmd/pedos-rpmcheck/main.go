// Command pedos-rpmcheck is a strict `rpm -K`: it verifies RPM packages
// with PedOS's native verifier (verify.md §1) and cross-checks each
// accepted package's canonical form with the strict rpmkeys command.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/release"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/rpmcheck"
)

const usage = `usage: pedos-rpmcheck [--keyring DIR] [--no-crosscheck] [--dom0-names] [--canonical-out DIR] [--json] FILE...

Verifies each RPM strictly: at least one header signature by a key in the
keyring and none failing, RSA >= 2048 or ed25519, SHA-256 or stronger, header
and payload digests, a well-formed header, and a file name of the characters
dom0 accepts ([A-Za-z0-9][A-Za-z0-9._+^~-]*.rpm). Unless
--no-crosscheck, the canonical form of each accepted package must also pass
"rpmkeys -K --define '_pkgverify_level all' --define '_pkgverify_flags 0x0'"
with a database holding only the keyring's keys. Keys and signatures are judged
at this machine's clock; dom0's receive judges them at its time floor, which a
clock set back cannot lower.

Prints one line per file:
  FILE: OK NAME-[EPOCH:]VERSION-RELEASE.ARCH signer=FINGERPRINT
  FILE: REJECTED KIND: REASON      (a verdict about the package)
  FILE: ERROR REASON               (it could not be read or written)
Options may come before or after the files; after "--", only files.
Exit status: 0 if every file is OK, 1 otherwise, 2 on usage errors (among
them a --keyring or --canonical-out directory that cannot be read).

Options:
  --keyring DIR        armored public keys to trust (default /etc/pki/rpm-gpg)
  --no-crosscheck      skip the rpmkeys cross-check
  --dom0-names         also require, as dom0 does, that each file is named
                       after the package inside: NAME-VERSION-RELEASE.ARCH.rpm
  --canonical-out DIR  write the canonical form of each accepted package to DIR
  --json               print one JSON object per line instead, with the
                       package's name, epoch, version, release, arch, signer
                       and digests (header SHA-256, payload digest); a usage
                       error is one object {"exit":2,"message":"..."}
  --version            print the release and commit, and exit

Examples:
  pedos-rpmcheck bash-5.2.37-1.fc41.x86_64.rpm
  pedos-rpmcheck --keyring ./keys --canonical-out ./clean *.rpm
  pedos-rpmcheck --dom0-names /var/lib/PedOS/updates/rpm/*.rpm
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("pedos-rpmcheck", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	keyringDir := flags.String("keyring", "/etc/pki/rpm-gpg", "")
	noCrossCheck := flags.Bool("no-crosscheck", false, "")
	dom0Names := flags.Bool("dom0-names", false, "")
	canonicalOut := flags.String("canonical-out", "", "")
	asJSON := flags.Bool("json", false, "")
	showVersion := flags.Bool("version", false, "")
	// With --json, stdout always holds an answer: an error as one object,
	// in the form pedos-dom0-update --json reports its own.
	failure := func(code int, message string) int {
		fmt.Fprintf(stderr, "pedos-rpmcheck: %s\n", message)
		if jsonWanted(args) {
			_ = cmdline.WriteJSONLine(stdout, usageReport{Exit: code, Message: message})
		}
		return code
	}
	usageError := func(message string) int {
		defer fmt.Fprintln(stderr, "Try 'pedos-rpmcheck --help'.")
		return failure(2, message)
	}
	// Options may follow files, as with rpm -K; "--" ends the options.
	var files []string
	for rest := args; len(rest) > 0; {
		if err := flags.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, usage)
				return 0
			}
			return usageError(cmdline.OptionError(flags, err))
		}
		parsed := len(rest) - len(flags.Args())
		if parsed > 0 && rest[parsed-1] == "--" || flags.NArg() == 0 {
			files = append(files, flags.Args()...)
			break
		}
		files, rest = append(files, flags.Arg(0)), flags.Args()[1:]
	}
	if *showVersion {
		fmt.Fprintln(stdout, release.Line("pedos-rpmcheck"))
		return 0
	}
	if len(files) == 0 {
		return usageError("no FILE to check")
	}
	keyring, warnings, err := rpm.LoadKeyring(*keyringDir, time.Now())
	if err != nil {
		return usageError(err.Error())
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "pedos-rpmcheck: warning: %v\n", w)
	}
	if len(keyring.Files()) == 0 {
		fmt.Fprintf(stderr, "pedos-rpmcheck: warning: keyring %s holds no usable key: every package will be rejected\n", *keyringDir)
	}
	outDir := *canonicalOut
	if outDir != "" {
		if fi, err := os.Stat(outDir); err != nil || !fi.IsDir() {
			return usageError(fmt.Sprintf("--canonical-out %s is not a directory", outDir))
		}
	} else {
		tmp, err := os.MkdirTemp("", "pedos-rpmcheck-")
		if err != nil {
			return failure(1, fmt.Sprintf("a directory for the rewritten packages in %s (TMPDIR, or give --canonical-out DIR): %v", os.TempDir(), err))
		}
		defer os.RemoveAll(tmp)
		outDir = tmp
	}

	results := rpmcheck.Check(files, rpmcheck.Options{Keyring: keyring, OutDir: outDir, Private: *canonicalOut == "",
		CrossCheck: !*noCrossCheck, Dom0Names: *dom0Names, Warn: stderr})
	status := 0
	for _, r := range results {
		if !r.OK {
			status = 1
		}
		printResult(stdout, r, *asJSON)
	}
	return status
}

// usageReport is the --json answer to a usage or setup error.
type usageReport struct {
	Exit    int    `json:"exit"`
	Message string `json:"message"`
}

// jsonWanted says whether --json (or -json, -json=BOOL) is among the
// options, read without parsing them, so that a usage error anywhere on
// the line is reported as JSON too.
func jsonWanted(args []string) bool {
	want := false
	for _, arg := range args {
		if arg == "--" {
			break
		}
		name, value, hasValue := strings.Cut(arg, "=")
		if name == "-json" || name == "--json" {
			want = true
			if hasValue {
				want, _ = strconv.ParseBool(value)
			}
		}
	}
	return want
}

func printResult(w io.Writer, r rpmcheck.Result, asJSON bool) {
	if asJSON {
		_ = cmdline.WriteJSONLine(w, r) // a write error on stdout cannot be reported
		return
	}
	file, nevra, reason := shown(r.File), shown(r.NEVRA), shown(r.Reason)
	if r.OK {
		fmt.Fprintf(w, "%s: OK %s signer=%s\n", file, nevra, r.Signer)
		return
	}
	if r.Kind == "error" {
		fmt.Fprintf(w, "%s: ERROR %s\n", file, reason)
		return
	}
	fmt.Fprintf(w, "%s: REJECTED %s: %s\n", file, r.Kind, reason)
}

// shown is s as it is if it is printable text, else quoted: the base name
// passed the file name rule, but a directory of the path may hold a
// newline or an escape, and a package's name and a reason quoting it are
// what its signer wrote (the signature proves who, not what); none may
// forge a line or act on the terminal.
func shown(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(c rune) bool { return !unicode.IsPrint(c) }) {
		return strconv.Quote(s)
	}
	return s
}
