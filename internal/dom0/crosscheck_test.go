package dom0_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/benchrun"
	"pedos.dev/updates/internal/dom0"
)

// rpmkeysStandIn puts first on the PATH an rpmkeys that imports keys with the real one and
// answers -K with script (sh; its arguments are the files after "--").
func rpmkeysStandIn(t *testing.T, script string) {
	t.Helper()
	real, err := exec.LookPath("rpmkeys")
	if err != nil {
		t.Skip("rpmkeys not installed")
	}
	bin := t.TempDir()
	text := "#!/bin/sh\ncase \" $* \" in *\" -K \"*) ;; *) exec " + real + " \"$@\";; esac\n" +
		"while [ \"$1\" != -- ]; do shift; done\nshift\n" + script
	if err := os.WriteFile(filepath.Join(bin, "rpmkeys"), []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

// P11 and verify.md §1 ("accepted only if both verifiers accept it"): one package of the
// batch that rpmkeys refuses refuses the whole delivery, that package as a disagreement
// between the verifiers, the others as accepted.
func TestOnePackageRefusedByRPMKeysRefusesTheBatch(t *testing.T) {
	c, batch := benchDom0(t, nil)
	refused := filepath.Base(batch.Packages[1])
	rpmkeysStandIn(t, `fails=0
for f; do
	case "$f" in
	*/`+refused+`) echo "$f: digests OK"; fails=$((fails+1));;
	*) echo "$f: digests signatures OK";;
	esac
done
exit $fails
`)
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err == nil || res.Accepted || !strings.Contains(res.Error, "1 of 3 package(s) failed verification") {
		t.Fatalf("accepted %v (%v): %s; want the batch refused for one package; log:\n%s", res.Accepted, err, res.Error, log)
	}
	for _, p := range res.Packages {
		if disagree := p.Kind == "verifiers disagree"; disagree != (p.File == refused) || p.OK == (p.File == refused) {
			t.Errorf("package %s: %+v", p.File, p)
		}
	}
}

// C7, S11: rpmkeys still checking at the session's deadline is stopped, and the refusal
// says so; its silence is no disagreement between the verifiers (a security error).
func TestRPMKeysStoppedAtTheDeadline(t *testing.T) {
	c, batch := benchDom0(t, nil)
	c.ReceiveTimeout = 5 * time.Second // the session's deadline
	rpmkeysStandIn(t, "exec sleep 60\n")
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err == nil || res.Accepted || !strings.Contains(res.Error, "the rpmkeys cross-check did not finish before the session's deadline") {
		t.Errorf("accepted %v (%v): %s; want the cross-check stopped at the deadline; log:\n%s", res.Accepted, err, res.Error, log)
	}
	for _, p := range res.Packages {
		if p.Kind == "verifiers disagree" {
			t.Errorf("package %s refused as a disagreement: %+v", p.File, p)
		}
	}
}

// verify.md §1.5: each accepted package's record names its signer's fingerprint (the first
// of its signers) besides the list of them.
func TestResultNamesEachPackagesSigner(t *testing.T) {
	res, signer := acceptedDelivery(t)
	for _, p := range res.Packages {
		if p.Signer != signer || len(p.Signers) != 1 || p.Signers[0] != p.Signer {
			t.Errorf("package %s: signer %q, signers %q; want %s", p.File, p.Signer, p.Signers, signer)
		}
	}
}

// acceptedDelivery is the result of an accepted delivery of a benchmark
// batch, and its signer's fingerprint.
func acceptedDelivery(t *testing.T) (dom0.Result, string) {
	t.Helper()
	c, batch := benchDom0(t, nil)
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	res, log, err := deliverStaged(t, c, batch.Files(), "")
	if err != nil || !res.Accepted {
		t.Fatalf("refused (%v): %s; log:\n%s", err, res.Error, log)
	}
	return res, signer.Fingerprint()
}
