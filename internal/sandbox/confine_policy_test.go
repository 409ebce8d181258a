package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// ownDescriptor is the descriptor helperProcess opens before Confine for "own-descriptor".
var ownDescriptor = -1

func init() {
	// Confine closes what a parent let through exec (descriptors without FD_CLOEXEC above
	// stderr), never stdin, stdout, stderr or a descriptor of the process's own.
	actions["own-descriptor"] = func(helperCase) error {
		for _, fd := range []int{0, 1, 2, ownDescriptor} {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
				return fmt.Errorf("descriptor %d: %w", fd, err)
			}
		}
		return nil
	}
	actions["write-a-mebibyte"] = func(c helperCase) error {
		return os.WriteFile(filepath.Join(c.Policy.WritableDir, "big"), make([]byte, 1<<20), 0o644)
	}
}

// TestConfinePolicyEdges runs Confine in a child (it is irrevocable) on the edges of its
// policy: a writable directory that does not exist fails Confine rather than leaving the
// process without Landlock (qfile.md: "write access to its staging directory only");
// MaxFileSize 0 leaves the file size alone and 1 is a limit; the unpacker's own descriptors
// and its stdio stay open; root's group as the primary one is refused as a supplementary one is.
func TestConfinePolicyEdges(t *testing.T) {
	requireKernelSandbox(t)
	if os.Geteuid() != 0 {
		t.Skip("the user cases need root")
	}
	for _, tc := range []struct {
		name, action string
		maxFileSize  int64
		user         string
		missingDir   bool
		want         string
	}{
		{"no writable directory", "create-inside", 1 << 16, "", true, "confine: sandbox: opening directory "},
		{"no file size limit", "write-a-mebibyte", 0, "", false, "ok"},
		{"a file size limit of one byte", "oversized-file", 1, "", false, "EFBIG"},
		{"stdio and own descriptors", "own-descriptor", 1 << 16, "", false, "ok"},
		{"root's group as the primary group", "user-with-root-gid", 1 << 16, fmt.Sprint(nobodyUID), false,
			"confine: sandbox: running as uid 65534 but in group 0 (root's), which it cannot leave: operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sandboxDirs(t)
			c.Action, c.Policy.MaxFileSize, c.Policy.User = tc.action, tc.maxFileSize, tc.user
			if tc.missingDir {
				c.Policy.WritableDir = filepath.Join(c.Policy.WritableDir, "missing")
			}
			_, got, stderr := runConfined(t, c, nil)
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("outcome %q, want it to start %q (stderr: %s)", got, tc.want, stderr)
			}
		})
	}
}

// warnIfUnavailable: a mechanism the kernel lacks is a warning (Confine goes on with the
// others, and says so), any other failure stays an error.
func TestWarnIfUnavailable(t *testing.T) {
	var warnings []string
	missing := fmt.Errorf("%w: Landlock (ENOSYS)", errUnavailable)
	if err := warnIfUnavailable(missing, &warnings); err != nil || len(warnings) != 1 || warnings[0] != missing.Error() {
		t.Errorf("a missing mechanism: %v, warnings %q", err, warnings)
	}
	failed := errors.New("sandbox: landlock_restrict_self: EPERM")
	if err := warnIfUnavailable(failed, &warnings); err != failed || len(warnings) != 1 {
		t.Errorf("a failed mechanism: %v, warnings %q", err, warnings)
	}
}
