package testbin

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SeedFile keeps a committed fuzz seed (or a file the seeds need) current. With
// PEDOS_WRITE_FUZZ_CORPUS=1 it writes content to path, below a package's testdata/fuzz;
// otherwise the test fails unless path holds exactly content: the seeds are made the same in
// every run, so a change to what makes them cannot leave the committed corpus behind.
func SeedFile(t testing.TB, path string, content []byte) {
	t.Helper()
	if os.Getenv("PEDOS_WRITE_FUZZ_CORPUS") == "1" {
		err := os.MkdirAll(filepath.Dir(path), 0o755)
		if err == nil {
			err = os.WriteFile(path, content, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if have, err := os.ReadFile(path); err != nil || !bytes.Equal(have, content) {
		t.Errorf("%s is not the seed this test makes (%v): remake the package's corpus with PEDOS_WRITE_FUZZ_CORPUS=1 go test -run '^TestWriteFuzzCorpus$'", path, err)
	}
}

// SeedTools keeps the versions of the tools that make a package's seeds (their --version
// lines) beside the seeds, in dir/TOOLS: written with PEDOS_WRITE_FUZZ_CORPUS=1; otherwise,
// where this machine's tools differ, the test is skipped saying so, since other versions make
// other bytes (rpmbuild writes its version into every header).
func SeedTools(t testing.TB, dir string, tools ...string) {
	t.Helper()
	var versions []byte
	for _, tool := range tools {
		out, err := exec.Command(tool, "--version").Output()
		if err != nil {
			t.Fatalf("%s --version: %v (scripts/install-deps.sh installs it)", tool, err)
		}
		versions = append(versions, out...)
	}
	path := filepath.Join(dir, "TOOLS")
	if os.Getenv("PEDOS_WRITE_FUZZ_CORPUS") == "1" {
		SeedFile(t, path, versions)
		return
	}
	if have, err := os.ReadFile(path); err != nil || !bytes.Equal(have, versions) {
		t.Skipf("the committed seeds were made by other tools than this machine's (%s: %v):\n%s", path, err, have)
	}
}
