package dom0_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
)

// fullableBuildDisk puts the build's file system (/var/lib/PedOS below c's
// root: the cached repository's parent and the staging directory) on a
// tmpfs of its own, which a test can fill, with the state directory on a
// tmpfs apart: the result and the progress still have room once it is
// full. The mounts go when the test ends.
func fullableBuildDisk(t *testing.T, c dom0.Config) (buildParent string) {
	t.Helper()
	buildParent = filepath.Dir(c.Path(dom0.CachedRepoDir))
	if _, err := os.Stat(buildParent); !os.IsNotExist(err) {
		t.Fatalf("%s: %v; want it made by the delivery", buildParent, err)
	}
	if err := os.MkdirAll(buildParent, 0o755); err != nil {
		t.Fatal(err)
	}
	testbin.Tmpfs(t, buildParent, "size=4m,mode=0755")
	if err := os.Mkdir(c.Path(dom0.StateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	testbin.Tmpfs(t, c.Path(dom0.StateDir), "size=4m,mode=0755")
	return buildParent
}

// Verified copies dom0 cannot write for want of space (its disk filled while
// the stream arrived) fail the delivery as dom0's fault, naming its full
// disk, with no verdict on the packages that would blame them or the
// UpdateVM (threats.md F2: a failure of dom0's own is said as such, and
// nothing is published).
func TestFullDiskDuringTheCopiesIsSaidAsDom0s(t *testing.T) {
	c, batch := benchDom0(t, nil)
	buildParent := fullableBuildDisk(t, c)
	// The stand-in unpacker, having staged the files, fills the disk.
	res, log, _ := deliverStaged(t, c, batch.Files(), "cat /dev/zero >"+buildParent+"/filler 2>/dev/null\nexit 0\n")
	if res.Accepted || !strings.HasPrefix(res.Error, "dom0's disk is full: no space left in "+buildParent+" for the verified copies") || len(res.Packages) != 0 {
		t.Errorf("accepted %v: %q, %d package verdicts; want dom0's disk named full and no verdicts; log:\n%s", res.Accepted, res.Error, len(res.Packages), log)
	}
	assertNothingPublished(t, c)
}

// createrepo_c failing on a full file system says no more than "gzclose():
// file operation error": the delivery's error adds that dom0's disk is full
// (F2: "createrepo_c fails"; said as dom0's, not as the packages' fault).
func TestCreateRepoOnAFullDiskSaysTheDiskIsFull(t *testing.T) {
	c, batch := benchDom0(t, nil)
	buildParent := fullableBuildDisk(t, c)
	// The stand-in leaves 256 KiB, less than the 1 MiB that is said as a full disk, for rpmkeys,
	// which runs meanwhile on its database in the same file system.
	standInTool(t, "createrepo_c", "#!/bin/sh\nfree=$(df -B1 --output=avail "+buildParent+" | tail -n 1)\n"+
		"head -c $((free - 262144)) /dev/zero >"+buildParent+"/filler\necho 'gzclose(): file operation error' >&2\nexit 1\n")
	res, log, _ := deliverStaged(t, c, batch.Files(), "")
	if res.Accepted || !strings.Contains(res.Error, "gzclose(): file operation error") || !strings.Contains(res.Error, "(the file system of "+buildParent+" has ") || !strings.Contains(res.Error, " bytes free: dom0's disk is full, the likely cause") {
		t.Errorf("accepted %v: %q; want createrepo_c's error and dom0's full disk; log:\n%s", res.Accepted, res.Error, log)
	}
	assertNothingPublished(t, c)
}
