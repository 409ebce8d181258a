package attack

import (
	"bytes"
	"crypto"
	"fmt"
	"strings"
	"time"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testrepo"
)

// packageCase is one crafted delivery and what dom0 must answer.
type packageCase struct {
	attempt
	files map[string][]byte
}

// refusedPackages runs each case with the real qfile-agent sending its
// files and summarises the reasons dom0 gave.
func (e *Env) refusedPackages(cases []packageCase) (string, error) {
	var seen []string
	for _, c := range cases {
		if err := e.deliverFiles(c.files); err != nil {
			return "", err
		}
		u, err := e.refused(c.attempt)
		if err != nil {
			return "", err
		}
		seen = append(seen, c.label+": "+rejection(u))
	}
	return "refused, dom0 unchanged — " + strings.Join(seen, "; "), nil
}

// rejection is the first rejected package's reason, else the batch's.
func rejection(u Update) string {
	if r := u.Report.Result; r != nil {
		for _, p := range r.Packages {
			if !p.OK {
				return p.Rejected
			}
		}
		return r.Error
	}
	return u.Report.Message
}

// rejectedAs is a case whose one package dom0 must reject for reason.
func rejectedAs(label, name string, pkg []byte, reasons ...string) packageCase {
	return packageCase{files: map[string][]byte{name: pkg},
		attempt: attempt{label: label, want: []string{"failed verification"}, wantAny: reasons}}
}

// vendorPackage is hello-1.1-1 signed by the trusted vendor key, with it.
func (e *Env) vendorPackage() (*testrepo.Signer, []byte, string, error) {
	v, err := e.vendor()
	if err != nil {
		return nil, nil, "", err
	}
	pkg, name, err := signedBy(v)
	return v, pkg, name, err
}

// signedBy builds hello-1.1-1 signed by s.
func signedBy(s ...*testrepo.Signer) ([]byte, string, error) {
	return buildPackage("hello-1.1-1", s...)
}

var packageRows = []Row{
	{ID: "P1", Group: "packages", Attack: "an unsigned package", run: func(e *Env) (string, error) {
		pkg, name, err := signedBy()
		if err != nil {
			return "", err
		}
		return e.refusedPackages([]packageCase{rejectedAs("unsigned", name, pkg, "not signed")})
	}},
	{ID: "P2", Group: "packages", Attack: "a package signed by a key dom0 does not trust", run: func(e *Env) (string, error) {
		stranger, err := e.signer("stranger", testrepo.KeySpec{}, false)
		if err != nil {
			return "", err
		}
		pkg, name, err := signedBy(stranger)
		if err != nil {
			return "", err
		}
		return e.refusedPackages([]packageCase{rejectedAs("signed by a stranger", name, pkg, "not trusted")})
	}},
	{ID: "P3", Group: "packages", Attack: "payload modified after signing; header modified after signing", run: func(e *Env) (string, error) {
		_, pkg, name, err := e.vendorPackage()
		if err != nil {
			return "", err
		}
		payload := bytes.Clone(pkg)
		payload[len(payload)-16] ^= 0xff
		header, err := alterSignedHeader(pkg)
		if err != nil {
			return "", err
		}
		return e.refusedPackages([]packageCase{
			rejectedAs("payload byte flipped", name, payload, "payload digest does not match"),
			rejectedAs("header byte flipped", name, header, "digest does not match", "does not verify"),
		})
	}},
	{ID: "P4", Group: "packages", Attack: "a signature in the main header instead of the signature header (CVE-2021-20271 shape)", run: func(e *Env) (string, error) {
		v, err := e.vendor()
		if err != nil {
			return "", err
		}
		p, err := testrepo.ParsePackageSpec("hello-1.1-1")
		if err != nil {
			return "", err
		}
		inner, err := v.SignDetached([]byte("a header the attacker wants believed"))
		if err != nil {
			return "", err
		}
		p.ExtraHeaderTags = []rpm.Entry{rpm.BinEntry(rpm.SigTagRSAHeader, inner)}
		pkg, err := testrepo.Build(p, v)
		if err != nil {
			return "", err
		}
		return e.refusedPackages([]packageCase{rejectedAs("RSAHEADER in the main header", p.FileName(), pkg, "inside the main header")})
	}},
	{ID: "P5", Group: "packages", Attack: "extra unsigned data in the signature header meant for the rpm database (CVE-2021-3421 shape)", run: func(e *Env) (string, error) {
		v, pkg, name, err := e.vendorPackage()
		if err != nil {
			return "", err
		}
		lead, _, main, payload, err := testrepo.Parts(pkg)
		if err != nil {
			return "", err
		}
		// REQUIRENAME (1049) in the signature header: a dependency no
		// signature covers.
		extra := []rpm.Entry{{Tag: 1049, Type: 8, Count: 1, Data: []byte(marker + "-backdoor\x00")}}
		injected, err := testrepo.Assemble(lead, main, payload, extra, v)
		if err != nil {
			return "", err
		}
		c := rejectedAs("REQUIRENAME in the signature header", name, injected, "unexpected tag")
		c.untrusted = []string{marker}
		return e.refusedPackages([]packageCase{c})
	}},
	{ID: "P6", Group: "packages", Attack: "signed by a subkey without a valid binding (CVE-2021-3521 shape); by a revoked key; by an expired key", run: func(e *Env) (string, error) {
		var cases []packageCase
		for _, k := range []struct {
			label string
			spec  testrepo.KeySpec
		}{
			{"subkey without back-signature", testrepo.KeySpec{UnboundSubkey: true}},
			{"revoked key", testrepo.KeySpec{Revoked: true}},
			{"expired key", testrepo.KeySpec{Created: time.Now().Add(-72 * time.Hour), Lifetime: 24 * time.Hour}},
		} {
			s, err := e.signer(strings.ReplaceAll(k.label, " ", "-"), k.spec, true)
			if err != nil {
				return "", err
			}
			pkg, name, err := signedBy(s)
			if err != nil {
				return "", err
			}
			cases = append(cases, rejectedAs(k.label+" (its key file is in dom0's keyring)", name, pkg, "not trusted", "not valid", "skipped"))
		}
		return e.refusedPackages(cases)
	}},
	{ID: "P7", Group: "packages", Attack: "SHA-1, MD5 or DSA signature only; an RSA key under 2048 bits", run: runP7},
	{ID: "P8", Group: "packages", Attack: "malformed headers: unsorted or duplicate tags, offsets out of bounds, huge counts, no immutable region", run: func(e *Env) (string, error) {
		v, pkg, name, err := e.vendorPackage()
		if err != nil {
			return "", err
		}
		var cases []packageCase
		for _, m := range headerMalformations {
			bad, err := withMainHeader(pkg, m.mutate, v)
			if err != nil {
				return "", err
			}
			cases = append(cases, rejectedAs(m.label+", signed by a trusted key", name, bad, m.want))
		}
		return e.refusedPackages(cases)
	}},
	{ID: "P9", Group: "packages", Attack: "not an RPM at all; a valid package under a name that does not match its content", run: func(e *Env) (string, error) {
		_, pkg, _, err := e.vendorPackage()
		if err != nil {
			return "", err
		}
		return e.refusedPackages([]packageCase{
			rejectedAs("text named hello-1.1-1.noarch.rpm", "hello-1.1-1.noarch.rpm", []byte(strings.Repeat(marker+" not a package\n", 20)), "not an RPM"),
			rejectedAs("hello-1.1-1 named libfoo-9.0-1.noarch.rpm", "libfoo-9.0-1.noarch.rpm", pkg, "does not match the package inside"),
		})
	}},
	{ID: "P10", Group: "packages", Attack: "file names outside [A-Za-z0-9][A-Za-z0-9._+^~-]{0,255}\\.rpm", run: func(e *Env) (string, error) {
		var cases []packageCase
		for _, name := range []string{"-" + marker + ".rpm", "." + marker + ".rpm", marker + " x.rpm", marker + ".rpm.sh", marker + "é.rpm", marker + ".RPM"} {
			cases = append(cases, packageCase{files: map[string][]byte{name: junk}, attempt: attempt{label: fmt.Sprintf("%q", name),
				want: []string{"neither a package nor repository metadata"}, untrusted: []string{marker}}})
		}
		return e.refusedPackages(cases)
	}},
	{ID: "P11", Group: "packages", Attack: "one good package and one bad one in the same batch (all or nothing)", run: func(e *Env) (string, error) {
		v, good, goodName, err := e.vendorPackage()
		if err != nil {
			return "", err
		}
		bad, badName, err := buildPackage("libfoo-2.0-1", v)
		if err != nil {
			return "", err
		}
		bad[len(bad)-16] ^= 0xff
		u, err := func() (Update, error) {
			if err := e.deliverFiles(map[string][]byte{goodName: good, badName: bad}); err != nil {
				return Update{}, err
			}
			return e.refused(attempt{label: "good and tampered", want: []string{"1 of 2 package(s) failed verification", "payload digest does not match"}})
		}()
		if err != nil {
			return "", err
		}
		for _, p := range u.Report.Result.Packages {
			if p.File == goodName && !p.OK {
				return "", fmt.Errorf("the good package was rejected too: %s", p.Rejected)
			}
		}
		return "refused as a whole although " + goodName + " verified; dom0 unchanged", nil
	}},
}

// alterSignedHeader changes one byte of the main header's data (in the
// package's file list) and keeps the original signature header.
func alterSignedHeader(pkg []byte) ([]byte, error) {
	lead, sig, main, payload, err := testrepo.Parts(pkg)
	if err != nil {
		return nil, err
	}
	i := bytes.Index(main, []byte("hello-1.1-1.txt"))
	if i < 0 {
		return nil, fmt.Errorf("test package has no hello-1.1-1.txt in its header")
	}
	main = bytes.Clone(main)
	main[i] = 'j'
	return testrepo.Join(lead, sig, main, payload), nil
}

func runP7(e *Env) (string, error) {
	v, err := e.vendor()
	if err != nil {
		return "", err
	}
	sha1Signer := *v
	sha1Signer.Hash = crypto.SHA1
	sha1Pkg, name, err := signedBy(&sha1Signer)
	if err != nil {
		return "", err
	}
	unsigned, _, err := signedBy()
	if err != nil {
		return "", err
	}
	// OpenPGP algorithm ids (RFC 9580 §9.1, §9.5): DSA 17, MD5 1.
	dsa, err := withAlgorithms(unsigned, v, 17, 0)
	if err != nil {
		return "", err
	}
	md5, err := withAlgorithms(unsigned, v, 0, 1)
	if err != nil {
		return "", err
	}
	rsa1024, err := e.signer("rsa1024", testrepo.KeySpec{Algorithm: testrepo.RSA1024}, true)
	if err != nil {
		return "", err
	}
	weakPkg, _, err := signedBy(rsa1024)
	if err != nil {
		return "", err
	}
	return e.refusedPackages([]packageCase{
		rejectedAs("SHA-1 signature by a trusted key", name, sha1Pkg, "SHA-1"),
		rejectedAs("MD5 signature", name, md5, "MD5"),
		rejectedAs("DSA signature", name, dsa, "algorithm 17"),
		rejectedAs("RSA-1024 key in dom0's keyring", name, weakPkg, "not trusted", "1024 bits"),
	})
}
