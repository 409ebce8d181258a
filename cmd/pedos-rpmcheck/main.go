// Command pedos-rpmcheck is a strict `rpm -K`: it verifies RPM packages
// with PedOS's native verifier (verify.md §1) and cross-checks each
// accepted package's canonical form with the strict rpmkeys command.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/rpm"
)

const usage = `usage: pedos-rpmcheck [--keyring DIR] [--no-crosscheck] [--canonical-out DIR] [--json] FILE...

Verifies each RPM strictly: at least one header signature by a key in the
keyring and none failing, RSA >= 2048 or ed25519, SHA-256 or stronger, header
and payload digests, a well-formed header, and a file name that is the
package's own NAME-VERSION-RELEASE.ARCH.rpm, as dom0 requires. Unless --no-crosscheck, the
canonical form of each accepted package must also pass
"rpmkeys -K --define '_pkgverify_level all' --define '_pkgverify_flags 0x0'"
with a database holding only the keyring's keys.

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
  --canonical-out DIR  write the canonical form of each accepted package to DIR
  --json               print one JSON object per line instead, with the
                       package's name, epoch, version, release, arch, signer
                       and digests (header SHA-256, payload digest); a usage
                       error is one object {"exit":2,"message":"..."}
  --version            print the release and commit, and exit

Examples:
  pedos-rpmcheck bash-5.2.37-1.fc41.x86_64.rpm
  pedos-rpmcheck --keyring ./keys --canonical-out ./clean *.rpm
`

// result is one file's line; the package fields are set when it is OK
// (verify.md §1.5).
type result struct {
	File              string  `json:"file"`
	OK                bool    `json:"ok"`
	NEVRA             string  `json:"nevra,omitempty"`
	Name              string  `json:"name,omitempty"`
	Epoch             *uint32 `json:"epoch,omitempty"`
	Version           string  `json:"version,omitempty"`
	Release           string  `json:"release,omitempty"`
	Arch              string  `json:"arch,omitempty"`
	Signer            string  `json:"signer,omitempty"`
	HeaderSHA256      string  `json:"header_sha256,omitempty"`
	PayloadDigestAlgo string  `json:"payload_digest_algo,omitempty"`
	PayloadDigest     string  `json:"payload_digest,omitempty"`
	Kind              string  `json:"kind,omitempty"` // the rejection's class; "error" when the file could not be read or written
	Reason            string  `json:"reason,omitempty"`
}

// accepted is the result of a package the native verifier accepted.
func accepted(file string, pkg *rpm.VerifiedPackage) result {
	r := result{File: file, OK: true, NEVRA: pkg.NEVRA(), Name: pkg.Name, Version: pkg.Version, Release: pkg.Release,
		Arch: pkg.Arch, Signer: strings.Join(pkg.SignerFingerprints, ","), HeaderSHA256: pkg.HeaderSHA256,
		PayloadDigestAlgo: pkg.PayloadDigestAlgo, PayloadDigest: pkg.PayloadDigest}
	if pkg.HasEpoch {
		r.Epoch = &pkg.Epoch
	}
	return r
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("pedos-rpmcheck", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	keyringDir := flags.String("keyring", "/etc/pki/rpm-gpg", "")
	noCrossCheck := flags.Bool("no-crosscheck", false, "")
	canonicalOut := flags.String("canonical-out", "", "")
	asJSON := flags.Bool("json", false, "")
	showVersion := flags.Bool("version", false, "")
	usageError := func(message string) int {
		fmt.Fprintf(stderr, "pedos-rpmcheck: %s\nTry 'pedos-rpmcheck --help'.\n", message)
		// With --json, stdout always holds an answer: the error as one
		// object, in the form pedos-dom0-update --json reports its own.
		if jsonWanted(args) {
			line, _ := json.Marshal(usageReport{Exit: 2, Message: message})
			fmt.Fprintf(stdout, "%s\n", line)
		}
		return 2
	}
	// Options may follow files, as with rpm -K; "--" ends the options.
	var files []string
	for rest := args; len(rest) > 0; {
		if err := flags.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, usage)
				return 0
			}
			return usageError(err.Error())
		}
		parsed := len(rest) - len(flags.Args())
		if parsed > 0 && rest[parsed-1] == "--" || flags.NArg() == 0 {
			files = append(files, flags.Args()...)
			break
		}
		files, rest = append(files, flags.Arg(0)), flags.Args()[1:]
	}
	if *showVersion {
		fmt.Fprintln(stdout, cmdline.Version("pedos-rpmcheck"))
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
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	if len(keyring.Files()) == 0 {
		fmt.Fprintf(stderr, "warning: keyring %s holds no usable key: every signed package will be rejected as signed by an untrusted key\n", *keyringDir)
	}
	outDir := *canonicalOut
	if outDir != "" {
		if fi, err := os.Stat(outDir); err != nil || !fi.IsDir() {
			return usageError(fmt.Sprintf("--canonical-out %s is not a directory", outDir))
		}
	} else {
		tmp, err := os.MkdirTemp("", "pedos-rpmcheck-")
		if err != nil {
			fmt.Fprintf(stderr, "pedos-rpmcheck: %v\n", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		outDir = tmp
	}

	results, canonical := verifyAll(files, &rpm.Verifier{Keyring: keyring}, outDir, *canonicalOut == "")
	if !*noCrossCheck {
		crossCheck(results, canonical, keyring, stderr)
	}
	status := 0
	for i, r := range results {
		if !r.OK {
			status = 1
			if canonical[i] != "" {
				os.Remove(canonical[i])
			}
		}
		printResult(stdout, r, *asJSON)
	}
	return status
}

// usageReport is the --json answer to a usage error.
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

// verifyAll runs the native verifier on every file, writing canonical forms
// into outDir (each into a directory of its own if private, so that two
// files of the same name do not collide); canonical[i] is the written path
// for accepted files.
func verifyAll(files []string, v *rpm.Verifier, outDir string, private bool) ([]result, []string) {
	results := make([]result, len(files))
	canonical := make([]string, len(files))
	for i, untrustedPath := range files {
		base := filepath.Base(untrustedPath)
		if err := rpm.CheckFileName(base); err != nil {
			// P10: never echo a name that failed the check.
			results[i] = failed(fmt.Sprintf("(argument %d)", i+1), err)
			continue
		}
		dir := outDir
		if private {
			dir = filepath.Join(outDir, strconv.Itoa(i))
			if err := os.Mkdir(dir, 0o700); err != nil {
				results[i] = failed(untrustedPath, err)
				continue
			}
		}
		outPath := filepath.Join(dir, base)
		pkg, err := verifyFile(v, untrustedPath, outPath)
		if err == nil && pkg.FileName() != base {
			// P9, as dom0 refuses it: a name is what the UpdateVM and dnf go by.
			err = &rpm.Error{Kind: rpm.KindBadName, Reason: fmt.Sprintf("the file name does not match the package inside, %s: it would be %s (P9)", pkg.NEVRA(), pkg.FileName())}
			os.Remove(outPath)
		}
		if err != nil {
			results[i] = failed(untrustedPath, err)
			continue
		}
		canonical[i] = outPath
		results[i] = accepted(untrustedPath, pkg)
	}
	return results, canonical
}

func verifyFile(v *rpm.Verifier, path, outPath string) (*rpm.VerifiedPackage, error) {
	// Without O_NONBLOCK the open of a FIFO waits for a writer, forever;
	// a package is a regular file, and nothing else is read.
	in, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	info, err := in.Stat()
	switch {
	case err != nil:
		return nil, err
	case info.IsDir():
		return nil, errors.New("a directory, not a package file")
	case info.Mode()&fs.ModeNamedPipe != 0:
		return nil, errors.New("a named pipe (FIFO), not a package file: only a regular file is read")
	case !info.Mode().IsRegular():
		return nil, errors.New("a device or a socket, not a package file: only a regular file is read")
	}
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("canonical output: %w", err)
	}
	pkg, err := v.Verify(in, out)
	if closeErr := out.Close(); err == nil && closeErr != nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(outPath)
		return nil, err
	}
	return pkg, nil
}

// crossCheck runs rpmkeys, one run per CPU, over every canonical file and combines
// the verdicts (pkgtool.Agree).
func crossCheck(results []result, canonical []string, keyring *rpm.Keyring, stderr io.Writer) {
	ctx := context.Background()
	checker, warnings, err := pkgtool.NewRPMKeys(ctx, "", keyring.Files())
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	if err != nil {
		for i := range results {
			if results[i].OK {
				results[i] = failed(results[i].File, err)
			}
		}
		return
	}
	defer checker.Close()
	var files []string
	for _, c := range canonical {
		if c != "" {
			files = append(files, c)
		}
	}
	verdicts := checker.CheckParallel(ctx, files, runtime.NumCPU())
	for i, c := range canonical {
		if c != "" {
			if err := pkgtool.Agree(verdicts, c); err != nil {
				results[i] = failed(results[i].File, err)
			}
		}
	}
}

func failed(file string, err error) result {
	r := result{File: file, Reason: err.Error(), Kind: "error"}
	var rpmErr *rpm.Error
	if errors.As(err, &rpmErr) && rpmErr.Kind != rpm.KindIO {
		r.Kind = rpmErr.Kind.String()
	}
	return r
}

func printResult(w io.Writer, r result, asJSON bool) {
	if asJSON {
		line, _ := json.Marshal(r)
		fmt.Fprintf(w, "%s\n", line)
		return
	}
	if r.OK {
		fmt.Fprintf(w, "%s: OK %s signer=%s\n", r.File, r.NEVRA, r.Signer)
		return
	}
	if r.Kind == "error" {
		fmt.Fprintf(w, "%s: ERROR %s\n", r.File, r.Reason)
		return
	}
	fmt.Fprintf(w, "%s: REJECTED %s: %s\n", r.File, r.Kind, r.Reason)
}
