// Package rpmcheck is pedos-rpmcheck's work: every file through dom0's
// native verifier (verify.md §1) and its name check (P9, P10), its
// canonical form written out, and each accepted one cross-checked with the
// strict rpmkeys command, as dom0's receive service checks the packages of
// a delivery.
package rpmcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"pedos.dev/updates/internal/filekind"
	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/rpm"
)

// Result is one file's verdict; the package fields are set when it is OK
// (verify.md §1.5).
type Result struct {
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

// Options says how Check works.
type Options struct {
	Keyring *rpm.Keyring
	// OutDir receives the canonical form of each accepted package; with
	// Private, each goes into a directory of its own below it (OutDir is
	// then a temporary directory), so that two files of the same name do
	// not collide.
	OutDir  string
	Private bool
	// CrossCheck has rpmkeys check every canonical form too.
	CrossCheck bool
	// Dom0Names requires, as dom0 does, that a file is named after the
	// package inside (P9: dom0's repository must not offer a package under
	// another's name). rpm -K ignores names, and so does Check without it.
	Dom0Names bool
	// Warn receives the warnings of the rpmkeys key import.
	Warn io.Writer
}

// Check verifies files in their order and returns a Result for each. The
// canonical form of a file that is not OK in the end is removed.
func Check(files []string, o Options) []Result {
	results, canonical := verifyAll(files, o)
	if o.CrossCheck {
		crossCheck(results, canonical, o.Keyring, o.Warn)
	}
	for i, r := range results {
		if !r.OK && canonical[i] != "" {
			os.Remove(canonical[i])
		}
	}
	return results
}

// verifyAll runs the native verifier on every file; canonical[i] is the
// canonical form written for an accepted file.
func verifyAll(files []string, o Options) ([]Result, []string) {
	v := &rpm.Verifier{Keyring: o.Keyring}
	results := make([]Result, len(files))
	canonical := make([]string, len(files))
	for i, untrustedPath := range files {
		base := filepath.Base(untrustedPath)
		if err := rpm.CheckFileName(base); err != nil {
			// P10: never echo a name that failed the check.
			results[i] = failed(fmt.Sprintf("(argument %d)", i+1), err)
			continue
		}
		dir := o.OutDir
		if o.Private {
			dir = filepath.Join(o.OutDir, strconv.Itoa(i))
			if err := os.Mkdir(dir, 0o700); err != nil {
				results[i] = failed(untrustedPath, err)
				continue
			}
		}
		outPath := filepath.Join(dir, base)
		pkg, err := verifyFile(v, untrustedPath, outPath)
		if err == nil && o.Dom0Names {
			if err = pkg.CheckNameMatches(base); err != nil {
				os.Remove(outPath)
			}
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
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("%s, not a package file: only a regular file is read", filekind.Of(info.Mode()))
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

// crossCheck runs rpmkeys, one run per CPU, over every canonical file and
// combines the verdicts (pkgtool.Agree).
func crossCheck(results []Result, canonical []string, keyring *rpm.Keyring, warn io.Writer) {
	ctx := context.Background()
	checker, warnings, err := pkgtool.NewRPMKeys(ctx, "", keyring.Files())
	for _, w := range warnings {
		fmt.Fprintf(warn, "pedos-rpmcheck: warning: %v\n", w)
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

// accepted is the result of a package the native verifier accepted.
func accepted(file string, pkg *rpm.VerifiedPackage) Result {
	r := Result{File: file, OK: true, NEVRA: pkg.NEVRA(), Name: pkg.Name, Version: pkg.Version, Release: pkg.Release,
		Arch: pkg.Arch, Signer: strings.Join(pkg.SignerFingerprints, ","), HeaderSHA256: pkg.HeaderSHA256,
		PayloadDigestAlgo: pkg.PayloadDigestAlgo, PayloadDigest: pkg.PayloadDigest}
	if pkg.HasEpoch {
		r.Epoch = &pkg.Epoch
	}
	return r
}

func failed(file string, err error) Result {
	r := Result{File: file, Reason: err.Error(), Kind: "error"}
	var rpmErr *rpm.Error
	if errors.As(err, &rpmErr) && rpmErr.Kind != rpm.KindIO {
		r.Kind = rpmErr.Kind.String()
	}
	return r
}
