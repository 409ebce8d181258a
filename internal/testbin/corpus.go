package testbin

import (
	"bytes"
	"os"
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
