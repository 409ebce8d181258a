package dnftool

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A root without an rpm database is an error naming where the database
// should be, and nothing is made there: the real rpmdb would create an
// empty database in it and export that, so that the UpdateVM would find
// "no updates" for a mistyped installroot.
func TestExportRPMDBNeedsADatabase(t *testing.T) {
	if _, err := exec.LookPath("rpmdb"); err != nil {
		t.Skip("rpmdb not installed")
	}
	tools, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer tools.Close()

	typo := filepath.Join(t.TempDir(), "typo")
	err = tools.ExportRPMDB(typo, io.Discard)
	if want := "no rpm database in " + filepath.Join(typo, "var/lib/rpm"); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ExportRPMDB(%s) = %v, want an error saying %q", typo, err, want)
	}
	if _, err := os.Lstat(typo); !os.IsNotExist(err) {
		t.Errorf("%s was made (%v)", typo, err)
	}

	// A root with a database, even an empty one, exports.
	root := t.TempDir()
	if err := tools.Run(context.Background(), "rpmdb --initdb", nil, io.Discard, "rpmdb", "--root", root, "--initdb"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tools.ExportRPMDB(root, &out); err != nil {
		t.Errorf("ExportRPMDB of an initialised database: %v", err)
	}
}
