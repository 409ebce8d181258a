package pkgtool_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/dnftool"
	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testrepo"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// setup makes a trusted key, its keyring directory and an rpmkeys checker.
func setup(t *testing.T) (*testrepo.Signer, *rpm.Keyring, *pkgtool.RPMKeys) {
	t.Helper()
	need(t, "rpmkeys")
	signer, err := testrepo.NewSigner(testrepo.KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	if _, err := signer.WritePublicKey(keyDir); err != nil {
		t.Fatal(err)
	}
	keyring, warnings, err := rpm.LoadKeyring(keyDir, time.Now())
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	checker, warnings2, err := pkgtool.NewRPMKeys(context.Background(), "", keyring.Files())
	if err != nil || len(warnings2) > 0 {
		t.Fatal(err, warnings2)
	}
	t.Cleanup(func() { checker.Close() })
	return signer, keyring, checker
}

// canonicalize verifies each package natively into dir and returns the paths.
func canonicalize(t *testing.T, keyring *rpm.Keyring, dir string, pkgs map[string][]byte) []string {
	t.Helper()
	var paths []string
	for name, data := range pkgs {
		var out bytes.Buffer
		if _, err := (&rpm.Verifier{Keyring: keyring}).Verify(bytes.NewReader(data), &out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

func TestCheckBatch(t *testing.T) {
	checker, dir, good, unsigned := goodAndUnsigned(t)
	missing := filepath.Join(dir, "missing-1-1.noarch.rpm")
	verdicts := checker.CheckBatch(context.Background(), []string{good, unsigned, missing})
	if verdicts[good] != nil {
		t.Errorf("good package: %v", verdicts[good])
	}
	for _, bad := range []string{unsigned, missing} {
		if !errors.Is(verdicts[bad], pkgtool.ErrRPMKeysRejected) {
			t.Errorf("%s: %v, want rejection", filepath.Base(bad), verdicts[bad])
		}
	}
	if err := pkgtool.Agree(checker.CheckBatch(context.Background(), []string{unsigned}), unsigned); !errors.Is(err, pkgtool.ErrRPMKeysRejected) {
		t.Errorf("single check of an unsigned package: %v, want a rejection", err)
	}
}

// TestCheckBatchAfterAnUnreadableFile: rpm leaves the line of a file it
// cannot read unended, so the next file's verdict lands on it; the good
// package after it is still accepted, and the unreadable one is refused
// with its own error, not another file's.
func TestCheckBatchAfterAnUnreadableFile(t *testing.T) {
	checker, dir, good, unsigned := goodAndUnsigned(t)
	truncated := truncatedCopy(t, dir, good)
	next := filepath.Join(dir, "next-1-1.noarch.rpm") // a good package, named once
	data, err := os.ReadFile(good)
	if err == nil {
		err = os.WriteFile(next, data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	verdicts := checker.CheckBatch(context.Background(), []string{truncated, next, unsigned, good + ".missing"})
	if verdicts[next] != nil {
		t.Errorf("the good package after an unreadable one: %v", verdicts[next])
	}
	bad := []string{truncated, unsigned, good + ".missing"}
	for _, f := range bad {
		if !errors.Is(verdicts[f], pkgtool.ErrRPMKeysRejected) {
			t.Errorf("%s: %v, want a rejection", filepath.Base(f), verdicts[f])
			continue
		}
		for _, other := range bad {
			if other != f && strings.Contains(verdicts[f].Error(), filepath.Base(other)) {
				t.Errorf("%s: %v, names another file", filepath.Base(f), verdicts[f])
			}
		}
	}
	if !strings.Contains(fmt.Sprint(verdicts[truncated]), filepath.Base(truncated)) {
		t.Errorf("the unreadable file's reason is not rpm's error about it: %v", verdicts[truncated])
	}
}

// TestCheckParallel: files dealt out to several concurrent rpmkeys runs
// on one key database get the verdicts one run gives them, and a bad
// file fails in whichever run it lands.
func TestCheckParallel(t *testing.T) {
	signer, _, checker := setup(t)
	dir := t.TempDir()
	var files, bad []string
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		f, err := testrepo.WriteFile(dir, testrepo.Package{Name: name, Version: "1", Release: "1"}, signer)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	unsigned, err := testrepo.WriteFile(dir, testrepo.Package{Name: "unsigned", Version: "1", Release: "1"})
	if err != nil {
		t.Fatal(err)
	}
	bad = append(bad, unsigned, filepath.Join(dir, "missing-1-1.noarch.rpm"))
	files = append(files, bad...)
	for _, runs := range []int{1, 2, 3, 10} {
		verdicts := checker.CheckParallel(context.Background(), files, runs)
		if len(verdicts) != len(files) {
			t.Errorf("%d runs: %d verdicts for %d files", runs, len(verdicts), len(files))
		}
		for _, f := range files {
			if wantBad := slices.Contains(bad, f); wantBad != errors.Is(verdicts[f], pkgtool.ErrRPMKeysRejected) {
				t.Errorf("%d runs: %s: %v, want rejected=%v", runs, filepath.Base(f), verdicts[f], wantBad)
			}
		}
	}
}

// TestAgree: the verdict on a package the native verifier accepted.
func TestAgree(t *testing.T) {
	var rpmErr *rpm.Error
	if err := pkgtool.Agree(map[string]error{"a.rpm": pkgtool.ErrRPMKeysRejected}, "a.rpm"); !errors.As(err, &rpmErr) || rpmErr.Kind != rpm.KindVerifiersDisagree {
		t.Errorf("rpmkeys no: %v", err)
	}
	if err := pkgtool.Agree(map[string]error{"a.rpm": nil}, "a.rpm"); err != nil {
		t.Errorf("an explicit acceptance: %v", err)
	}
	// rpmkeys that did not run, or gave a file no verdict, refuses it
	// without a disagreement.
	for _, verdicts := range []map[string]error{{}, {"b.rpm": nil}, {"a.rpm": fmt.Errorf("%w: killed", pkgtool.ErrRPMKeysFailed)}} {
		if err := pkgtool.Agree(verdicts, "a.rpm"); !errors.Is(err, pkgtool.ErrRPMKeysFailed) || errors.As(err, &rpmErr) {
			t.Errorf("rpmkeys without a verdict (%v): %v", verdicts, err)
		}
	}
}

// TestCanonicalInstallsWithDNF: canonical packages in a local repository
// install with the real dnf, gpgcheck on, the key imported with
// ImportKeys and no gpgkey= line (real-tools.md).
func TestCanonicalInstallsWithDNF(t *testing.T) {
	need(t, "dnf", "createrepo_c")
	signer, keyring, checker := setup(t)
	pkgs := map[string][]byte{}
	for _, spec := range []string{"hello-1.1-1 requires=libfoo>=2.0", "libfoo-2.1-1 size=5000"} {
		p, _ := testrepo.ParsePackageSpec(spec)
		data, err := testrepo.Build(p, signer)
		if err != nil {
			t.Fatal(err)
		}
		pkgs[p.FileName()] = data
	}
	work := t.TempDir()
	repo, root, reposDir, home := filepath.Join(work, "repo"), filepath.Join(work, "root"), filepath.Join(work, "repos.d"), filepath.Join(work, "home")
	for _, d := range []string{repo, root, reposDir, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	paths := canonicalize(t, keyring, repo, pkgs)
	for path, err := range checker.CheckBatch(context.Background(), paths) {
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
		}
	}
	if err := dnftool.ImportKeys(context.Background(), root, keyring.Files()); err != nil {
		t.Fatal(err)
	}
	// dnf must see the same %_dbpath as ImportKeys (Debian's default is ~/.rpmdb).
	writeFile(t, filepath.Join(home, ".rpmmacros"), "%_dbpath /var/lib/rpm\n")
	config := filepath.Join(work, "dnf.conf")
	writeFile(t, config, "[main]\ngpgcheck=1\ninstall_weak_deps=False\nplugins=False\n")
	writeFile(t, filepath.Join(reposDir, "local.repo"), fmt.Sprintf("[local]\nname=local\nbaseurl=file://%s\ngpgcheck=1\n", repo))
	runTool(t, home, "createrepo_c", "--quiet", repo)
	runTool(t, home, "dnf", "-q", "-y", "--installroot="+root, "--config="+config, "--setopt=reposdir="+reposDir,
		"--releasever=1", "install", "hello")
	out := runTool(t, home, "rpm", "--root", root, "-q", "hello", "libfoo")
	if !strings.Contains(out, "hello-1.1-1.noarch") || !strings.Contains(out, "libfoo-2.1-1.noarch") {
		t.Errorf("installed: %s", out)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runTool(t *testing.T, home, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + home}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return string(out)
}

// A root without an rpm database is an error, not "nothing installed", and
// rpm is not left to create one there.
func TestInstalledPackagesNeedsADatabase(t *testing.T) {
	need(t, "rpm", "rpmdb")
	tools, err := pkgtool.NewTools(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer tools.Close()
	root := t.TempDir()
	if pkgs, err := tools.InstalledPackages(context.Background(), root); err == nil || !strings.Contains(err.Error(), "no rpm database") {
		t.Fatalf("got %v, %v; want an error about the missing database", pkgs, err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("the root without a database now holds %v", entries)
	}
	if out, err := exec.Command("rpmdb", "--root", root, "--dbpath", "/var/lib/rpm", "--initdb").CombinedOutput(); err != nil {
		t.Fatalf("rpmdb --initdb: %v %s", err, out)
	}
	if pkgs, err := tools.InstalledPackages(context.Background(), root); err != nil || len(pkgs) != 0 {
		t.Errorf("an empty database: %v, %v; want no packages and no error", pkgs, err)
	}
}

// rpmkeys that cannot run gives no verdict about the packages: each is
// refused as ErrRPMKeysFailed, never as a rejection by rpmkeys (which Agree
// would turn into a disagreement between the verifiers).
func TestCheckBatchWhenRPMKeysCannotRun(t *testing.T) {
	signer, _, checker := setup(t)
	good, err := testrepo.WriteFile(t.TempDir(), testrepo.Package{Name: "good", Version: "1", Release: "1"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	verdict := checker.CheckBatch(ctx, []string{good})[good]
	if !errors.Is(verdict, pkgtool.ErrRPMKeysFailed) || errors.Is(verdict, pkgtool.ErrRPMKeysRejected) {
		t.Errorf("verdict %v, want ErrRPMKeysFailed only", verdict)
	}
}

// rpmkeys accepts an unsigned package with "digests OK" where the
// signature level is not enforced (verify.md §1, P1), and its exit code is
// the number of failures: CheckBatch takes neither a line short of
// "digests signatures OK" nor an exit code that disagrees with the lines.
// A stand-in rpmkeys, first on the PATH, says what another rpm could.
func TestCheckBatchReadsRPMKeysStrictly(t *testing.T) {
	_, _, checker := setup(t)
	file := filepath.Join(t.TempDir(), "hello-1-1.noarch.rpm")
	if err := os.WriteFile(file, []byte("not read by the stand-in"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		verdict string
		exit    int
		want    string
	}{
		{"digests OK", 0, `rpmkeys says "digests OK"`},
		{"digests signatures OK", 1, "exit code 1 does not match its output"},
	} {
		bin := t.TempDir()
		script := "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nfor f; do echo \"$f: " + c.verdict + "\"; done\nexit " + strconv.Itoa(c.exit) + "\n"
		if err := os.WriteFile(filepath.Join(bin, "rpmkeys"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
		verdict := checker.CheckBatch(context.Background(), []string{file})[file]
		if !errors.Is(verdict, pkgtool.ErrRPMKeysRejected) || !strings.Contains(verdict.Error(), c.want) {
			t.Errorf("%q, exit %d: %v, want a rejection saying %s", c.verdict, c.exit, verdict, c.want)
		}
	}
}

// An rpmkeys that fails before it reaches the files (a broken install, a
// database it cannot open) gives no verdict on them: they are refused as
// not checked, not as a disagreement of the verifiers, the security error
// that says a package may be made to exploit one of them.
func TestBrokenRPMKeysGivesNoVerdict(t *testing.T) {
	checker, _, good, _ := goodAndUnsigned(t)
	for _, script := range []string{"exit 1\n", "echo 'rpmkeys: cannot start' >&2\nexit 1\n"} {
		standIn(t, "rpmkeys", script)
		err := pkgtool.Agree(checker.CheckBatch(context.Background(), []string{good}), good)
		if !errors.Is(err, pkgtool.ErrRPMKeysFailed) || !strings.Contains(err.Error(), "gave no verdict on the file (exit 1)") {
			t.Errorf("rpmkeys running %q: %v, want no verdict", script, err)
		}
	}
}

// goodAndUnsigned is a checker with the test key, and in dir a package
// signed by it and an unsigned one.
func goodAndUnsigned(t *testing.T) (checker *pkgtool.RPMKeys, dir, good, unsigned string) {
	t.Helper()
	signer, _, checker := setup(t)
	dir = t.TempDir()
	good, err := testrepo.WriteFile(dir, testrepo.Package{Name: "good", Version: "1", Release: "1"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err = testrepo.WriteFile(dir, testrepo.Package{Name: "unsigned", Version: "1", Release: "1"})
	if err != nil {
		t.Fatal(err)
	}
	return checker, dir, good, unsigned
}

// A batch of two, as CheckParallel deals four packages to two runs: the good
// package after an unreadable one still gets its own verdict (verify.md §1:
// the cross-check refuses only what rpmkeys refuses), not the line the
// unreadable one left unended.
func TestCheckBatchOfTwoAfterAnUnreadableFile(t *testing.T) {
	checker, dir, good, _ := goodAndUnsigned(t)
	truncated := truncatedCopy(t, dir, good)
	verdicts := checker.CheckBatch(context.Background(), []string{truncated, good})
	if verdicts[good] != nil || !errors.Is(verdicts[truncated], pkgtool.ErrRPMKeysRejected) {
		t.Errorf("good: %v, truncated: %v; want the good one accepted, the truncated one rejected", verdicts[good], verdicts[truncated])
	}
}

// truncatedCopy writes the first 200 bytes of package good into dir, a file
// rpm cannot read, and returns its path.
func truncatedCopy(t *testing.T, dir, good string) string {
	t.Helper()
	data, err := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated-1-1.noarch.rpm")
	if err == nil {
		err = os.WriteFile(truncated, data[:200], 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return truncated
}

// A file rpm reaches but cannot read as a package leaves "FILE:" alone on
// stdout, and here no error naming it: that is rpmkeys' verdict on it, a
// rejection (which Agree turns into the verifiers' disagreement when dom0's
// verifier accepted the file, verify.md §1), never "no verdict". A file it
// cannot open is named only in its errors: rejected too, the reason saying
// that rpmkeys wrote no line about it, with rpm's error.
func TestCheckBatchVerdictOnAFileRPMCannotRead(t *testing.T) {
	checker, dir, good, _ := goodAndUnsigned(t)
	junk := filepath.Join(dir, "junk-1-1.noarch.rpm")
	writeFile(t, junk, strings.Repeat("this is not an rpm package\n", 8))
	missing := filepath.Join(dir, "missing-1-1.noarch.rpm")
	for _, batch := range [][]string{{junk}, {missing}, {junk, missing, good}} {
		verdicts := checker.CheckBatch(context.Background(), batch)
		if err := verdicts[junk]; slices.Contains(batch, junk) && (!errors.Is(err, pkgtool.ErrRPMKeysRejected) || errors.Is(err, pkgtool.ErrRPMKeysFailed)) {
			t.Errorf("%d file(s): a file that is no package: %v, want a rejection by rpmkeys", len(batch), err)
		}
		if err := verdicts[missing]; slices.Contains(batch, missing) && (!errors.Is(err, pkgtool.ErrRPMKeysRejected) || !strings.Contains(err.Error(), `rpmkeys says "(no line)" ("error: `+missing+`: open failed`)) {
			t.Errorf("%d file(s): a missing file: %v, want a rejection saying rpmkeys wrote no line about it", len(batch), err)
		}
	}
}
