package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
)

// TestBatch (P11): one good and one bad package; the bad one is rejected,
// the exit status is 1, and only the good one reaches --canonical-out.
func TestBatch(t *testing.T) {
	if _, err := exec.LookPath("rpmkeys"); err != nil {
		t.Skip("rpmkeys not installed")
	}
	bin := testbin.Path(t, "pedos-rpmcheck")
	signer, err := testrepo.NewSigner(testrepo.KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	keys, dir, out := t.TempDir(), t.TempDir(), t.TempDir()
	if _, err := signer.WritePublicKey(keys); err != nil {
		t.Fatal(err)
	}
	good, err := testrepo.WriteFile(dir, testrepo.Package{Name: "good", Version: "1", Release: "1", Epoch: 3}, signer)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := testrepo.WriteFile(dir, testrepo.Package{Name: "bad", Version: "1", Release: "1"})
	if err != nil {
		t.Fatal(err)
	}
	badName := filepath.Join(dir, "evil\x1b[2J.rpm")

	stdout, code := runBin(t, bin, "--keyring", keys, "--canonical-out", out, good, bad, badName)
	want := good + ": OK good-3:1-1.noarch signer=" + signer.Fingerprint() + "\n" +
		bad + ": REJECTED unsigned: package is not signed (no RSAHEADER or DSAHEADER signature)\n" +
		"(argument 3): REJECTED bad file name: file name does not match [A-Za-z0-9][A-Za-z0-9._+^~-]{0,255}\\.rpm (name not shown)\n"
	if code != 1 || stdout != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, stdout, want)
	}
	written, _ := os.ReadDir(out)
	if len(written) != 1 || written[0].Name() != filepath.Base(good) {
		t.Errorf("canonical-out holds %v", written)
	}

	// Options after the files; the canonical copy checked again has the
	// same signed header, so the same digests.
	stdout, code = runBin(t, bin, filepath.Join(out, filepath.Base(good)), "--keyring", keys, "--json")
	var r result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || code != 0 || !r.OK || r.NEVRA != "good-3:1-1.noarch" ||
		r.Name != "good" || r.Epoch == nil || *r.Epoch != 3 || len(r.HeaderSHA256) != 64 || r.PayloadDigestAlgo != "sha256" || len(r.PayloadDigest) != 64 {
		t.Errorf("json: exit %d %q %v", code, stdout, err)
	}

	// A second file of the same name, and a canonical copy that is already
	// there, are errors of the output, not verdicts about the package.
	again := filepath.Join(t.TempDir(), filepath.Base(good))
	if err := os.Link(good, again); err != nil {
		t.Fatal(err)
	}
	if stdout, code := runBin(t, bin, "--keyring", keys, good, again); code != 0 {
		t.Errorf("two files of the same name: exit %d:\n%s", code, stdout)
	}
	stdout, code = runBin(t, bin, "--keyring", keys, "--canonical-out", out, good)
	if code != 1 || !strings.HasPrefix(stdout, good+": ERROR canonical output:") {
		t.Errorf("canonical copy already there: exit %d:\n%s", code, stdout)
	}
}

func TestUsage(t *testing.T) {
	bin := testbin.Path(t, "pedos-rpmcheck")
	for _, args := range [][]string{{}, {"--bogus", "x.rpm"}, {"--keyring", "/nonexistent", "x.rpm"}, {"x.rpm", "--bogus"},
		{"--keyring", t.TempDir(), "--canonical-out", "/nonexistent", "x.rpm"}} {
		if _, code := runBin(t, bin, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if stdout, code := runBin(t, bin, "--help"); code != 0 || !strings.Contains(stdout, "usage: pedos-rpmcheck") {
		t.Errorf("--help: exit %d", code)
	}
}

func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return string(out), exitErr.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}
