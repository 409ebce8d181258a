package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A policy without a writable directory is refused before anything is
// applied (qfile.md: the unpacker has "write access to its staging
// directory only"; no directory named is no sandbox to make).
func TestConfineNeedsAWritableDirectory(t *testing.T) {
	warnings, err := Confine(Policy{})
	if err == nil || err.Error() != "sandbox: the policy names no writable directory" || warnings != nil {
		t.Errorf("Confine(Policy{}) = %q, %v; want the policy refused", warnings, err)
	}
}

// resolveUser's edges (qfile.md: "when started as root, switched to an unprivileged user"):
// root's uid is refused whatever its entry's group; an entry needs its four first fields, and
// four are enough; a uid is 32 bits, where a larger number would wrap to another (4294967296
// to root's 0 in the kernel's uid_t).
func TestResolveUserEdges(t *testing.T) {
	passwd := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(passwd, []byte("toor:x:0:65534::/:/bin/sh\nfour:x:7:8\nthree:x:9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user    string
		want    account
		wantErr string
	}{
		{"toor", account{}, "refusing"},
		{"four", account{7, 8}, ""},
		{"three", account{}, "no such user"},
		{"2147483648", account{2147483648, 2147483648}, ""},
		{"4294967294", account{4294967294, 4294967294}, ""},
		{"4294967296", account{}, "not a valid uid"},
	} {
		got, err := resolveUser(tc.user, passwd)
		if tc.wantErr == "" && (err != nil || got != tc.want) {
			t.Errorf("resolveUser(%q) = %v, %v; want %v", tc.user, got, err, tc.want)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("resolveUser(%q) = %v, %v; want an error containing %q", tc.user, got, err, tc.wantErr)
		}
	}
}

// canScopeSignals is true exactly from ABI 6 on a kernel that reports erratum 2 (bit 1 of
// the errata mask), as this test asks the kernel itself: TestConfine's signal check and its
// expected warnings rely on canScopeSignals, so they cannot catch it saying the wrong thing.
func TestCanScopeSignals(t *testing.T) {
	errata, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_ERRATA)
	fixed := errno == 0 && errata&2 != 0
	for abi, want := range map[int]bool{1: false, 5: false, 6: fixed, 7: fixed} {
		if got := canScopeSignals(abi); got != want {
			t.Errorf("canScopeSignals(%d) = %t, want %t (errata %#x, %v)", abi, got, want, errata, errno)
		}
	}
}

// landlockGaps for ABI 2: truncation is still open there (ABI 3 closes it).
func TestLandlockGapsABI2(t *testing.T) {
	gaps := landlockGaps(2, false)
	if len(gaps) != 3 || !strings.HasPrefix(gaps[0], "truncating") {
		t.Errorf("ABI 2: gaps %q, want truncating, TCP and signals", gaps)
	}
}
