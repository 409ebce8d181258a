package qfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

// receiveInto runs the receiver (no sync) on a fresh DIR and returns its status, DIR and error.
func receiveInto(t *testing.T, onlyRegular bool, stream []byte) (Status, string, error) {
	t.Helper()
	dir := stagingDir(t)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	rc := &Receiver{Root: root, Limits: Limits{MaxBytes: 1 << 20, MaxFiles: 64}, OnlyRegularFiles: onlyRegular, NoSync: true}
	st, err := rc.Receive(bytes.NewReader(stream))
	return st, dir, err
}

// qfile.md "Forward stream": a directory is created 0700 on its first header, so its
// contents can be written whatever the umask; its own mode comes with its second header.
// Run as nobody: root would write into a directory of mode 0400 anyway.
func TestDirectoryIsFilledPastTheUmask(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	const nobody = 65534
	dir := stagingDir(t)
	mustDo(t, os.Chown(dir, nobody, nobody))
	cmd := exec.Command("/bin/sh", "-c", `umask 0377 && exec "$0" "$@"`, testbin.Path(t, "qfile-dom0-unpacker"), fmt.Sprint(nobody), dir)
	cmd.Stdin = fileWith(t, stream(entry("top", dirMode, nil), entry("top/f", ModeRegular|0o755, []byte("x")), entry("top", dirMode, nil)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("umask 0377: %v; want success\n%s", err, stderr.Bytes())
	}
	if got := treeOf(t, dir, false); !slices.Equal(got, []string{"d 0755 top", "f 0755 top/f size=1"}) {
		t.Errorf("DIR holds %q", got)
	}
}

// qfile.md "Forward stream": names "longer than 16383 bytes (namelen > 16383) are refused with
// ENAMETOOLONG": a namelen of exactly 16383 is not. Here the name ends at its first NUL, so the
// file is "a" (S3).
func TestNamelen16383IsNotTooLong(t *testing.T) {
	name := append([]byte("a\x00"), bytes.Repeat([]byte("x"), 16383-2)...)
	st, dir, err := receiveInto(t, true, stream(rawEntry(Header{NameLen: 16383, Mode: regularMode, FileLen: 1}, name, []byte("x"))))
	if st.Code != 0 || err != nil {
		t.Fatalf("namelen 16383: status %d, %v; want success", st.Code, err)
	}
	if got := treeOf(t, dir, false); !slices.Equal(got, []string{"f 0644 a size=1"}) {
		t.Errorf("DIR holds %q", got)
	}
	onlyStagingExists(t, dir)
}

// qfile.md "Status": the code for a stream that ends inside a name or a file is the special
// value 31415926, the reference's number, not merely our constant (S6).
func TestLegalEOFIsTheReferenceNumber(t *testing.T) {
	st, dir, err := receiveInto(t, true, rawEntry(Header{NameLen: 2, Mode: regularMode, FileLen: 100}, []byte("a\x00"), []byte("short")))
	if st.Code != 31415926 || !strings.Contains(errString(err), "stream ended inside a file (S6)") {
		t.Errorf("status %d, %v; want 31415926 saying the stream ended inside a file", st.Code, err)
	}
	onlyStagingExists(t, dir)
}

// A failure's status is never 0, which the sender reads as success (qfile.md "Status":
// "0 = success"): an error that carries no errno, or errno 0, is EIO.
func TestErrnoOfNeverSaysSuccess(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{errors.New("no errno"), syscall.EIO},
		{fmt.Errorf("wrapped: %w", syscall.Errno(0)), syscall.EIO},
		{fmt.Errorf("wrapped: %w", syscall.EEXIST), syscall.EEXIST},
	} {
		if got := ErrnoOf(tc.err); got != uint32(tc.want) {
			t.Errorf("ErrnoOf(%v) = %d, want %d (%v)", tc.err, got, tc.want, tc.want)
		}
	}
}

// qfile.md "Forward stream": the name ends at its first NUL, so a name that starts with one is
// the empty name, refused as such (S3), whatever follows the NUL.
func TestNameStartingWithNULIsEmpty(t *testing.T) {
	st, dir, err := receiveInto(t, true, stream(rawEntry(Header{NameLen: 6, Mode: regularMode}, []byte("\x00evil\x00"), nil)))
	if st.Code != uint32(syscall.EILSEQ) || !strings.Contains(errString(err), "the name is empty") {
		t.Errorf("status %d, %v; want EILSEQ saying the name is empty", st.Code, err)
	}
	if got := treeOf(t, dir, false); len(got) != 0 {
		t.Errorf("DIR holds %q", got)
	}
	onlyStagingExists(t, dir)
}

// S5: a file sent "through" a symlink is refused with ELOOP, and the message says a symlink
// was in the way (not a bare "opening directory").
func TestFileThroughSymlinkSaysSymlink(t *testing.T) {
	st, dir, err := receiveInto(t, false, stream(entry("sub", dirMode, nil), entry("l", linkMode, []byte("sub")),
		entry("l/x", regularMode, []byte("x"))))
	if st.Code != uint32(syscall.ELOOP) || !strings.Contains(errString(err), `"l" is a symlink (S5)`) {
		t.Errorf("status %d, %v; want ELOOP saying \"l\" is a symlink (S5)", st.Code, err)
	}
	if got := treeOf(t, dir, false); !slices.Equal(got, []string{"d 0700 sub", "l 0777 l -> sub"}) {
		t.Errorf("DIR holds %q", got)
	}
	onlyStagingExists(t, dir)
}

// In dom0's mode no stream can make a directory, so a name with "/" can only fail: the message
// says why, not a bare "no such file or directory", and the code stays ENOENT, as the
// reference's.
func TestRegularOnlyNameInADirectorySaysWhy(t *testing.T) {
	st, dir, err := receiveInto(t, true, stream(entry("x/y", regularMode, []byte("a"))))
	if st.Code != uint32(syscall.ENOENT) || !strings.Contains(errString(err), "only regular files are taken") {
		t.Errorf("status %d, %v; want ENOENT saying only regular files are taken", st.Code, err)
	}
	if got := treeOf(t, dir, false); len(got) != 0 {
		t.Errorf("DIR holds %q", got)
	}
	onlyStagingExists(t, dir)
}

// Where a stream may make directories, a name in one it has not made is
// ENOENT with no such reason: the directory could have come first.
func TestNameInAMissingDirectoryOutsideRegularOnly(t *testing.T) {
	st, _, err := receiveInto(t, false, stream(entry("x/y", regularMode, []byte("a"))))
	if st.Code != uint32(syscall.ENOENT) || !strings.Contains(errString(err), "opening directory \"x\"") || strings.Contains(errString(err), "only regular files are taken") {
		t.Errorf("status %d, %v; want ENOENT for the missing directory, without dom0's reason", st.Code, err)
	}
}

// openDescriptors counts the process's open file descriptors.
func openDescriptors(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(entries)
}

// The receiver holds at most one directory open and closes every descriptor it opened by the
// end of a transfer (qfile.md "Receiver rules": resources stay bounded whatever the stream):
// a tree of nested directories leaks none.
func TestReceiveClosesEveryDescriptor(t *testing.T) {
	tree := stream(entry("a", dirMode, nil), entry("a/b", dirMode, nil), entry("a/b/c", dirMode, nil),
		entry("a/b/c/f", regularMode, []byte("x")), entry("a/b/c", dirMode, nil), entry("a/b/g", regularMode, nil),
		entry("a/b", dirMode, nil), entry("a/h", regularMode, nil), entry("a", dirMode, nil), entry("top", regularMode, nil))
	receiveInto(t, false, tree) // the first use may open descriptors that stay (the runtime's poller)
	before := openDescriptors(t)
	st, dir, err := receiveInto(t, false, tree)
	if st.Code != 0 || err != nil {
		t.Fatalf("status %d, %v", st.Code, err)
	}
	if after := openDescriptors(t); after != before {
		t.Errorf("%d descriptors open after the transfer, %d before", after, before)
	}
	onlyStagingExists(t, dir)
}

// Received, when set, hears of every entry once it was created, with its size, in stream order
// (the unpacker's --verbose log).
func TestReceivedHearsEveryEntry(t *testing.T) {
	root, err := os.OpenRoot(stagingDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var heard []string
	rc := &Receiver{Root: root, Limits: Limits{MaxBytes: 100, MaxFiles: 4}, OnlyRegularFiles: true, NoSync: true,
		Received: func(name string, size uint64) { heard = append(heard, fmt.Sprintf("%s %d", name, size)) }}
	st, err := rc.Receive(bytes.NewReader(stream(entry("a", regularMode, []byte("xyz")), entry("b", regularMode, nil))))
	if st.Code != 0 || err != nil {
		t.Fatalf("status %d, %v", st.Code, err)
	}
	if want := []string{"a 3", "b 0"}; !slices.Equal(heard, want) {
		t.Errorf("Received heard %q, want %q", heard, want)
	}
}

// A DIR that cannot be opened is a failure, never a success (qfile.md "Status": 0 = success),
// even for a stream with nothing to create.
func TestUnopenableRootIsAFailure(t *testing.T) {
	root, err := os.OpenRoot(stagingDir(t))
	if err != nil {
		t.Fatal(err)
	}
	root.Close()
	rc := &Receiver{Root: root, Limits: Limits{MaxBytes: 100, MaxFiles: 4}, OnlyRegularFiles: true, NoSync: true}
	st, err := rc.Receive(bytes.NewReader(endMarker))
	if st.Code == 0 || err == nil || !strings.Contains(err.Error(), "opening") {
		t.Errorf("closed root: status %d, %v; want a failure saying it could not be opened", st.Code, err)
	}
}

// failingReader gives data, then err once, then EOF.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	if err := r.err; err != nil {
		r.err = nil
		return 0, err
	}
	return 0, io.EOF
}

// A read error inside a payload ends the transfer with that error (qfile.md "Status": "any
// errno from creating or writing the file"), not taken for the sender's end of stream (S6).
func TestReadErrorInsideAFileIsReported(t *testing.T) {
	root, err := os.OpenRoot(stagingDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	rc := &Receiver{Root: root, Limits: Limits{MaxBytes: 100, MaxFiles: 4}, OnlyRegularFiles: true, NoSync: true}
	cut := rawEntry(Header{NameLen: 2, Mode: regularMode, FileLen: 10}, []byte("a\x00"), []byte("abc"))
	st, err := rc.Receive(&failingReader{data: cut, err: syscall.EIO})
	if st.Code != uint32(syscall.EIO) || !strings.Contains(errString(err), "reading the stream") {
		t.Errorf("status %d, %v; want EIO saying the stream could not be read", st.Code, err)
	}
	// Inside a name, and inside a symlink's target, likewise.
	for what, cut := range map[string][]byte{
		"name":           rawEntry(Header{NameLen: 4, Mode: regularMode}, []byte("ab"), nil),
		"symlink target": rawEntry(Header{NameLen: 2, Mode: ModeSymlink | 0o777, FileLen: 10}, []byte("l\x00"), []byte("abc")),
	} {
		rc := &Receiver{Root: root, Limits: Limits{MaxBytes: 100, MaxFiles: 4}, NoSync: true}
		st, err := rc.Receive(&failingReader{data: cut, err: syscall.ECONNRESET})
		if st.Code != uint32(syscall.ECONNRESET) || !strings.Contains(errString(err), "reading the stream") {
			t.Errorf("a read error inside a %s: status %d, %v; want ECONNRESET saying the stream could not be read", what, st.Code, err)
		}
	}
}
