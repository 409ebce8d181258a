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

// SeedTools keeps the versions of the tools that make a package's seeds (the first line of
// their --version) beside the seeds, in dir/TOOLS: written with PEDOS_WRITE_FUZZ_CORPUS=1;
// otherwise, where this machine's tools differ, the test is skipped saying so, since other
// versions make other bytes (rpmbuild writes its version into every header). A TOOLS file
// that is missing fails the test: it would silence the comparison for good.
func SeedTools(t testing.TB, dir string, tools ...string) {
	t.Helper()
	var versions []byte
	for _, tool := range tools {
		out, err := exec.Command(tool, "--version").Output()
		if err != nil {
			t.Fatalf("%s --version: %v (scripts/install-deps.sh installs it)", tool, err)
		}
		first, _, _ := bytes.Cut(out, []byte("\n"))
		versions = append(append(versions, first...), '\n')
	}
	path := filepath.Join(dir, "TOOLS")
	if os.Getenv("PEDOS_WRITE_FUZZ_CORPUS") == "1" {
		SeedFile(t, path, versions)
		return
	}
	have, err := os.ReadFile(path)
	switch {
	case err != nil:
		t.Fatalf("%v: remake the package's corpus with PEDOS_WRITE_FUZZ_CORPUS=1 go test -run '^TestWriteFuzzCorpus$'", err)
	case !bytes.Equal(have, versions):
		t.Skipf("the committed seeds were made by other tools than this machine's (%s):\n%sthis machine's:\n%s", path, have, versions)
	}
}
