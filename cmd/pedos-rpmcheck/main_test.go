package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pedos.dev/updates/internal/rpmcheck"
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
	// P9: a good package under another package's name.
	renamed := filepath.Join(dir, "microcode_ctl-2.1-61.fc41.x86_64.rpm")
	if err := os.Link(good, renamed); err != nil {
		t.Fatal(err)
	}

	stdout, code := runBin(t, bin, "--keyring", keys, "--canonical-out", out, "--dom0-names", good, bad, badName, renamed)
	want := good + ": OK good-3:1-1.noarch signer=" + signer.Fingerprint() + "\n" +
		bad + ": REJECTED unsigned: package is not signed (no RSAHEADER or DSAHEADER signature)\n" +
		"(argument 3): REJECTED bad file name: file name does not match [A-Za-z0-9][A-Za-z0-9._+^~-]{0,255}\\.rpm (name not shown)\n" +
		renamed + ": REJECTED bad file name: the file name does not match the package inside, \"good-3:1-1.noarch\": it would be \"good-1-1.noarch.rpm\" (P9)\n"
	if code != 1 || stdout != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, stdout, want)
	}
	written, _ := os.ReadDir(out)
	if len(written) != 1 || written[0].Name() != filepath.Base(good) {
		t.Errorf("canonical-out holds %v", written)
	}
	// Without --dom0-names a name is only held to the character rule, as
	// rpm -K holds it to none: a renamed package is OK.
	signed := filepath.Join(t.TempDir(), "signed.rpm")
	if err := os.Link(good, signed); err != nil {
		t.Fatal(err)
	}
	stdout, code = runBin(t, bin, "--keyring", keys, renamed, signed)
	want = renamed + ": OK good-3:1-1.noarch signer=" + signer.Fingerprint() + "\n" +
		signed + ": OK good-3:1-1.noarch signer=" + signer.Fingerprint() + "\n"
	if code != 0 || stdout != want {
		t.Errorf("without --dom0-names: exit %d, output:\n%s\nwant:\n%s", code, stdout, want)
	}

	// Options after the files; the canonical copy checked again has the
	// same signed header, so the same digests.
	stdout, code = runBin(t, bin, filepath.Join(out, filepath.Base(good)), "--keyring", keys, "--json")
	var r rpmcheck.Result
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

	// A directory's newline or escape cannot forge a line: the path is quoted.
	odd := filepath.Join(t.TempDir(), "d\nx: OK \x1b[2J\x9b2J")
	if err := os.Mkdir(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	oddGood := filepath.Join(odd, filepath.Base(good))
	if err := os.Link(good, oddGood); err != nil {
		t.Fatal(err)
	}
	stdout, code = runBin(t, bin, "--keyring", keys, oddGood)
	if want := strconv.Quote(oddGood) + ": OK good-3:1-1.noarch signer="; code != 0 || !strings.HasPrefix(stdout, want) || strings.Count(stdout, "\n") != 1 {
		t.Errorf("a path with a newline: exit %d:\n%s\nwant it starting %s", code, stdout, want)
	}

	// A trusted key's holder may sign a package named with an escape and
	// a right-to-left override: the name is quoted, in a verdict and in a
	// reason that repeats it.
	oddName, err := testrepo.WriteFile(t.TempDir(), testrepo.Package{Name: "odd\x1b[2J\u202e", Version: "1", Release: "1"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	named := filepath.Join(t.TempDir(), "odd-1-1.noarch.rpm")
	if err := os.Link(oddName, named); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{named}, {"--dom0-names", named}} {
		stdout, _ = runBin(t, bin, append([]string{"--keyring", keys, "--no-crosscheck"}, args...)...)
		if !strings.Contains(stdout, `odd\x1b[2J\u202e-1-1.noarch`) || strings.ContainsAny(stdout, "\x1b\u202e") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("%q: a package name with an escape is not quoted:\n%q", args, stdout)
		}
	}
}

func TestUsage(t *testing.T) {
	bin := testbin.Path(t, "pedos-rpmcheck")
	for _, args := range [][]string{{}, {"--bogus", "x.rpm"}, {"--keyring", "/nonexistent", "x.rpm"}, {"x.rpm", "--bogus"},
		{"--keyring", t.TempDir(), "--canonical-out", "/nonexistent", "x.rpm"}} {
		// The message, then the hint (as pedos-download-dom0-updates says its own).
		if _, stderr, code := runBinStderr(t, bin, args...); code != 2 || !strings.Contains(stderr, "pedos-rpmcheck: ") || !strings.HasSuffix(stderr, "\nTry 'pedos-rpmcheck --help'.\n") {
			t.Errorf("%v: exit %d, stderr %q; want 2, the message, then the hint to --help", args, code, stderr)
		}
	}
	if stdout, code := runBin(t, bin, "--help"); code != 0 || !strings.Contains(stdout, "usage: pedos-rpmcheck") {
		t.Errorf("--help: exit %d", code)
	}
}

// With --json, a usage error is one JSON object on stdout, {"exit":2,
// "message":…} as pedos-dom0-update --json reports its own, wherever --json
// is on the line; without it, stdout stays empty.
func TestUsageJSON(t *testing.T) {
	bin := testbin.Path(t, "pedos-rpmcheck")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--json"}, "no FILE to check"},
		{[]string{"--json", "--bogus", "x.rpm"}, "unknown option --bogus"},
		{[]string{"x.rpm", "--bogus", "-json"}, "unknown option --bogus"},
		{[]string{"--json=true", "--keyring", "/nonexistent", "x.rpm"}, "keyring /nonexistent"},
		{[]string{"--keyring", t.TempDir(), "--canonical-out", "/nonexistent", "x.rpm", "--json"}, "--canonical-out /nonexistent is not a directory"},
	} {
		stdout, code := runBin(t, bin, tc.args...)
		var rep map[string]any
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 2 || len(rep) != 2 || rep["exit"] != 2.0 ||
			!strings.Contains(fmt.Sprint(rep["message"]), tc.want) || strings.Count(stdout, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q (%v); want exit 2 and one object saying %q", tc.args, code, stdout, err, tc.want)
		}
		plain := slices.DeleteFunc(slices.Clone(tc.args), func(a string) bool { return strings.Contains(a, "json") })
		if stdout, code := runBin(t, bin, plain...); code != 2 || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing", plain, code, stdout)
		}
	}
}

// A scratch directory that cannot be made (TMPDIR gone) is said naming it,
// and with --json is one object too, of exit 1.
func TestNoScratchDirectoryJSON(t *testing.T) {
	cmd := exec.Command(testbin.Path(t, "pedos-rpmcheck"), "--json", "--keyring", t.TempDir(), "x.rpm")
	cmd.Env = append(os.Environ(), "TMPDIR=/nonexistent")
	stdout, stderr, code := testbin.Run(t, cmd)
	var rep map[string]any
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 1 || rep["exit"] != 1.0 ||
		!strings.Contains(fmt.Sprint(rep["message"]), "in /nonexistent (TMPDIR, or give --canonical-out DIR)") || !strings.Contains(stderr, "/nonexistent") ||
		strings.Contains(stderr, "--help") { // not a usage error
		t.Errorf("exit %d, stdout %q (%v), stderr %q; want exit 1 and one object naming TMPDIR", code, stdout, err, stderr)
	}
}

// A keyring directory without a usable key is a warning: every signed
// package would be rejected as signed by an untrusted key.
func TestEmptyKeyringWarning(t *testing.T) {
	bin := testbin.Path(t, "pedos-rpmcheck")
	keys := t.TempDir()
	if err := os.WriteFile(filepath.Join(keys, "README"), []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, err := testrepo.WriteFile(t.TempDir(), testrepo.Package{Name: "hello", Version: "1", Release: "1"})
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runBinStderr(t, bin, "--no-crosscheck", "--keyring", keys, pkg)
	if want := "warning: keyring " + keys + " holds no usable key"; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, want 1 and %q; stderr:\n%s", code, want, stderr)
	}
}

func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	stdout, _, code := runBinStderr(t, bin, args...)
	return stdout, code
}

// runBinStderr is runBin with the program's stderr too.
func runBinStderr(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return testbin.Run(t, exec.Command(bin, args...))
}
