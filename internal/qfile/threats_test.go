package qfile

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/testbin"
)

const (
	regularMode = ModeRegular | 0o644
	dirMode     = ModeDir | 0o755
	linkMode    = ModeSymlink | 0o777
)

// threatCase is one attack of threats.md (S1–S13) against the real qfile-dom0-unpacker.
type threatCase struct {
	name   string
	stream []byte
	args   []string // nil: the dom0 update mode (--only-regular-files)
	env    []string
	code   uint32
	tree   []string // what DIR must hold afterwards, if not nil
}

// escapedPath is where absolute names and symlinks of the cases point, outside every DIR.
var escapedPath = filepath.Join(os.TempDir(), "pedos-qfile-escaped")

func threatCases() []threatCase {
	hello := entry("hello", regularMode, []byte("hi\n"))
	helloTree := []string{"f 0644 hello size=3"}
	defaultMode := []string{}
	bad := func(name string) []byte { return stream(hello, entry(name, regularMode, []byte("x"))) }
	withNsec := func(atime, mtime uint32) []byte {
		h := Header{NameLen: 2, Mode: regularMode, FileLen: 1, AtimeNsec: atime, MtimeNsec: mtime}
		return stream(rawEntry(h, []byte("a\x00"), []byte("x")))
	}
	escaped := escapedPath
	return []threatCase{
		{name: "S1/dotdot", stream: bad("../escaped"), code: uint32(syscall.EILSEQ), tree: helloTree},
		{name: "S1/absolute", stream: bad(escaped), code: uint32(syscall.EILSEQ), tree: helloTree},
		{name: "S1/double-slash", stream: bad("a//b"), code: uint32(syscall.EILSEQ), tree: helloTree},
		{name: "S1/dot-component", stream: bad("./a"), code: uint32(syscall.EILSEQ), tree: helloTree},
		{name: "S1/trailing-slash", stream: bad("a/"), code: uint32(syscall.EILSEQ), tree: helloTree},
		{name: "S1/dotdot-default-mode", args: defaultMode,
			stream: stream(entry("top", dirMode, nil), entry("top/../../escaped", regularMode, []byte("x"))),
			code:   uint32(syscall.EILSEQ), tree: []string{"d 0700 top"}},
		{name: "S2/control", stream: bad("a\x1bb"), code: uint32(syscall.EILSEQ), tree: helloTree},
		{name: "S2/invalid-utf8", stream: bad("a\xc3\x28"), code: uint32(syscall.EILSEQ), tree: helloTree},
		{name: "S2/bidi-override", stream: bad("gpj.\u202erpm"), code: uint32(syscall.EILSEQ), tree: helloTree},
		{name: "S2/newline", stream: bad("a\nINFO: all good"), code: uint32(syscall.EILSEQ), tree: helloTree},
		// An all-zero header in the middle is an end marker, so what follows is garbage (S12).
		{name: "S3/namelen-0-in-the-middle", stream: append(append(hello, endMarker...), stream(entry("b", regularMode, nil))...),
			code: uint32(syscall.EPROTO), tree: helloTree},
		{name: "S3/namelen-0-not-all-zero", stream: append(hello, encodeHeader(Header{Mode: regularMode, FileLen: 5})...),
			code: uint32(syscall.EINVAL), tree: helloTree},
		{name: "S3/namelen-over-16383", stream: stream(hello, rawEntry(Header{NameLen: 16384, Mode: regularMode},
			bytes.Repeat([]byte("a"), 16384), nil)), code: uint32(syscall.ENAMETOOLONG), tree: helloTree},
		// Short components: past the limit, the name is refused for its length before any lookup.
		{name: "S3/namelen-16384-of-short-components", stream: stream(hello, rawEntry(Header{NameLen: 16384, Mode: regularMode},
			append(bytes.Repeat([]byte("a/"), 8191), 'a', 0), nil)), code: uint32(syscall.ENAMETOOLONG), tree: helloTree},
		{name: "S3/longest-name", stream: stream(rawEntry(Header{NameLen: 255, Mode: regularMode},
			bytes.Repeat([]byte("a"), 255), nil)), tree: []string{"f 0644 " + strings.Repeat("a", 255) + " size=0"}},
		// A missing NUL is tolerated and an embedded NUL ends the name (spec "Forward stream").
		{name: "S3/name-without-NUL", stream: stream(rawEntry(Header{NameLen: 1, Mode: regularMode, FileLen: 1}, []byte("a"), []byte("x"))),
			tree: []string{"f 0644 a size=1"}},
		{name: "S3/embedded-NUL", stream: stream(rawEntry(Header{NameLen: 4, Mode: regularMode, FileLen: 1}, []byte("a\x00b\x00"), []byte("x"))),
			tree: []string{"f 0644 a size=1"}},
		{name: "S3/only-NUL", stream: stream(rawEntry(Header{NameLen: 1, Mode: regularMode}, []byte{0}, nil)), code: uint32(syscall.EILSEQ), tree: []string{}},
		{name: "S4/directory", stream: stream(hello, entry("d", dirMode, nil)), code: uint32(syscall.EINVAL), tree: helloTree},
		{name: "S4/symlink", stream: stream(hello, entry("l", linkMode, []byte("hello"))), code: uint32(syscall.EINVAL), tree: helloTree},
		{name: "S4/fifo", stream: stream(entry("p", syscall.S_IFIFO|0o644, nil)), args: defaultMode, code: uint32(syscall.EINVAL), tree: []string{}},
		{name: "S4/char-device", stream: stream(entry("c", syscall.S_IFCHR|0o644, nil)), args: defaultMode, code: uint32(syscall.EINVAL), tree: []string{}},
		{name: "S4/block-device", stream: stream(entry("b", syscall.S_IFBLK|0o644, nil)), args: defaultMode, code: uint32(syscall.EINVAL), tree: []string{}},
		{name: "S4/socket", stream: stream(entry("s", syscall.S_IFSOCK|0o644, nil)), args: defaultMode, code: uint32(syscall.EINVAL), tree: []string{}},
		{name: "S4/no-type", stream: stream(entry("n", 0o644, nil)), code: uint32(syscall.EINVAL), tree: []string{}},
		{name: "S5/file-through-symlink", args: defaultMode, code: uint32(syscall.ELOOP),
			stream: stream(entry("top", dirMode, nil), entry("top/sub", dirMode, nil), entry("top/l", linkMode, []byte("sub")),
				entry("top/l/x", regularMode, []byte("x"))),
			tree: []string{"d 0700 top", "d 0700 top/sub", "l 0777 top/l -> sub"}},
		{name: "S5/file-through-top-level-symlink", args: defaultMode, code: uint32(syscall.ELOOP),
			stream: stream(entry("top", dirMode, nil), entry("top", dirMode, nil), entry("l", linkMode, []byte("top")),
				entry("l/x", regularMode, []byte("x"))),
			tree: []string{"d 0755 top", "l 0777 l -> top"}},
		// A directory's second visit sets its mode through a descriptor opened O_NOFOLLOW: a
		// symlink of that name (here to "top", inside the tree) is not a directory.
		{name: "S5/directory-visit-through-symlink", args: defaultMode, code: uint32(syscall.EEXIST),
			stream: stream(entry("top", dirMode, nil), entry("top/a", dirMode, nil), entry("top/a/d", linkMode, []byte("..")),
				entry("top/a/d", ModeDir|0o777, nil)),
			tree: []string{"d 0700 top", "d 0700 top/a", "l 0777 top/a/d -> .."}},
		// A target longer than any name is refused from its header, before its bytes are read.
		{name: "S5/symlink-target-over-16383", args: defaultMode, code: uint32(syscall.ENAMETOOLONG),
			stream: stream(entry("top", dirMode, nil), rawEntry(Header{NameLen: 6, Mode: linkMode, FileLen: 1 << 20}, []byte("top/l\x00"), nil)),
			tree:   []string{"d 0700 top"}},
		{name: "S5/symlink-climbing-out", args: defaultMode, code: uint32(syscall.ENOLINK),
			stream: stream(entry("top", dirMode, nil), entry("top/l", linkMode, []byte("../escaped"))), tree: []string{"d 0700 top"}},
		{name: "S5/absolute-symlink", args: defaultMode, code: uint32(syscall.ENOLINK),
			stream: stream(entry("top", dirMode, nil), entry("top/l", linkMode, []byte(escaped))), tree: []string{"d 0700 top"}},
		{name: "S6/filelen-beyond-the-data", stream: rawEntry(Header{NameLen: 2, Mode: regularMode, FileLen: 100}, []byte("a\x00"), []byte("short")),
			code: LegalEOF},
		{name: "S6/ends-inside-a-header", stream: append(hello, endMarker[:10]...), code: uint32(syscall.EREMOTEIO), tree: helloTree},
		{name: "S6/ends-inside-a-name", stream: append(hello, rawEntry(Header{NameLen: 10, Mode: regularMode}, []byte("abc"), nil)...),
			code: LegalEOF, tree: helloTree},
		// Cut inside a symlink's target: nothing is created from the part that arrived.
		{name: "S6/ends-inside-a-symlink-target", args: defaultMode, code: LegalEOF,
			stream: append(entry("top", dirMode, nil), rawEntry(Header{NameLen: 6, Mode: linkMode, FileLen: 10}, []byte("top/l\x00"), []byte("abc"))...),
			tree:   []string{"d 0700 top"}},
		{name: "S7/no-end-marker", stream: hello, code: uint32(syscall.EREMOTEIO), tree: helloTree},
		{name: "S7/empty-stream", stream: nil, code: uint32(syscall.EREMOTEIO), tree: []string{}},
		{name: "S4/directory-with-a-payload", args: defaultMode, stream: stream(hello, entry("d", dirMode, []byte("x"))),
			code: uint32(syscall.EINVAL), tree: helloTree},
		{name: "S8/over-the-byte-limit", env: []string{"UPDATES_MAX_BYTES=100"},
			stream: stream(entry("a", regularMode, make([]byte, 60)), entry("b", regularMode, make([]byte, 41))),
			code:   uint32(syscall.EDQUOT), tree: []string{"f 0644 a size=60"}},
		{name: "S8/at-the-byte-limit", env: []string{"UPDATES_MAX_BYTES=100"},
			stream: stream(entry("a", regularMode, make([]byte, 60)), entry("b", regularMode, make([]byte, 40))),
			tree:   []string{"f 0644 a size=60", "f 0644 b size=40"}},
		{name: "S8/over-the-file-limit", env: []string{"UPDATES_MAX_FILES=2"},
			stream: stream(hello, entry("b", regularMode, nil), entry("c", regularMode, nil)),
			code:   uint32(syscall.EDQUOT), tree: []string{"f 0644 b size=0", "f 0644 hello size=3"}},
		{name: "S8/directory-counts-twice", env: []string{"UPDATES_MAX_FILES=2"}, args: defaultMode,
			stream: stream(entry("d", dirMode, nil), entry("d/f", regularMode, nil), entry("d", dirMode, nil)),
			code:   uint32(syscall.EDQUOT), tree: []string{"d 0700 d", "f 0644 d/f size=0"}},
		{name: "S8/5GiB-filelen", stream: stream(rawEntry(Header{NameLen: 4, Mode: regularMode, FileLen: 5 << 30}, []byte("big\x00"), []byte("data"))),
			code: uint32(syscall.EDQUOT), tree: []string{}},
		{name: "S8/unparsable-limit-is-a-usage-error", env: []string{"UPDATES_MAX_BYTES=lots"}, stream: stream(hello)},
		// The reference reads 0 as "no limit"; here it is refused rather than read as "nothing".
		{name: "S8/zero-limit-is-a-usage-error", env: []string{"UPDATES_MAX_FILES=0"}, stream: stream(hello)},
		{name: "S9/same-name-twice", stream: stream(hello, entry("hello", regularMode, []byte("evil"))),
			code: uint32(syscall.EEXIST), tree: helloTree},
		{name: "S9/same-name-as-directory", args: defaultMode,
			stream: stream(hello, entry("hello", dirMode, nil)), code: uint32(syscall.EEXIST), tree: helloTree},
		{name: "S10/atime-nanoseconds", stream: withNsec(1e9, 0), code: uint32(syscall.EINVAL), tree: []string{}},
		{name: "S10/mtime-nanoseconds", stream: withNsec(0, 0xffffffff), code: uint32(syscall.EINVAL), tree: []string{}},
		{name: "S10/mtime-nanoseconds-at-10^9", stream: withNsec(0, 1e9), code: uint32(syscall.EINVAL), tree: []string{}},
		// The spec's bound is "< 1,000,000,000": the largest nanosecond value is a valid time.
		{name: "S10/nanoseconds-just-below-10^9", stream: withNsec(999999999, 999999999), tree: []string{"f 0644 a size=1"}},
		{name: "S10/setuid-world-writable", stream: stream(entry("suid", ModeRegular|0o7777, []byte("x"))),
			tree: []string{"f 0755 suid size=1"}},
		{name: "S10/default-mode-keeps-special-bits", args: defaultMode, stream: stream(entry("suid", ModeRegular|0o4755, []byte("x"))),
			tree: []string{"f 4755 suid size=1"}},
		// Modes the umask would narrow at creation are applied afterwards (receiver.go, regular).
		{name: "S10/default-mode-group-and-other-write-past-the-umask", args: defaultMode,
			stream: stream(entry("shared", ModeRegular|0o666, []byte("x")), entry("private", ModeRegular|0o400, []byte("y"))),
			tree:   []string{"f 0400 private size=1", "f 0666 shared size=1"}},
		{name: "S12/garbage-after-the-end-marker", stream: append(stream(hello), "garbage"...),
			code: uint32(syscall.EPROTO), tree: helloTree},
		{name: "S12/one-byte-after-the-end-marker", stream: append(stream(hello), 0),
			code: uint32(syscall.EPROTO), tree: helloTree},
		// A regular file used as a directory is ENOTDIR, not taken for a symlink (ELOOP), and
		// nothing is created through it.
		{name: "S5/file-as-a-directory", args: defaultMode, stream: stream(hello, entry("hello/x", regularMode, []byte("x"))),
			code: uint32(syscall.ENOTDIR), tree: helloTree},
	}
}

// TestThreats runs every stream attack against the real unpacker: each must end with the
// expected status (and exit code), leave DIR as stated, and nothing beside DIR.
func TestThreats(t *testing.T) {
	for _, tc := range threatCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := stagingDir(t)
			args := tc.args
			if args == nil {
				args = []string{"--only-regular-files"}
			}
			if strings.HasSuffix(tc.name, "usage-error") {
				cmd := exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), currentUser(), dir)
				cmd.Env = append(os.Environ(), tc.env...)
				cmd.Stdin = fileWith(t, tc.stream)
				out, err := cmd.Output()
				if cmd.ProcessState.ExitCode() != 2 || len(out) != 0 || !strings.Contains(errString(err), "exit status 2") {
					t.Errorf("exit %d, stdout %q: want a usage error (exit 2, nothing on stdout)", cmd.ProcessState.ExitCode(), out)
				}
			} else {
				res := runUnpacker(t, dir, fileWith(t, tc.stream), tc.env, args...)
				wantCode(t, res.status.Code, tc.code, res.stderr)
				if want := int(min(tc.code, 255)); res.exit != want {
					t.Errorf("exit code %d, want %d", res.exit, want)
				}
			}
			if tc.tree != nil {
				if got := treeOf(t, dir, false); strings.Join(got, "\n") != strings.Join(tc.tree, "\n") {
					t.Errorf("DIR holds:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.tree, "\n"))
				}
			}
			onlyStagingExists(t, dir)
			if _, err := os.Lstat(escapedPath); err == nil {
				t.Errorf("%s exists", escapedPath)
			}
		})
	}
}

// TestThreatS11SlowStream: a stream that stalls is ended by --timeout with ETIMEDOUT, at that
// deadline (not much later: within 30 s of a 300 ms one, a bound no loaded machine comes near,
// and which a deadline a thousand times too long does not meet).
func TestThreatS11SlowStream(t *testing.T) {
	dir := stagingDir(t)
	// A file that announces a megabyte and delivers a few bytes, then nothing, never closing.
	r := pipeWith(t, rawEntry(Header{NameLen: 5, Mode: regularMode, FileLen: 1 << 20}, []byte("slow\x00"), []byte("drip")), true)
	start := time.Now()
	res := runUnpacker(t, dir, r, nil, "--only-regular-files", "--timeout", "300ms")
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the 300ms deadline ended the stream only after %s", took)
	}
	wantCode(t, res.status.Code, uint32(syscall.ETIMEDOUT), res.stderr)
	if res.exit != int(syscall.ETIMEDOUT) {
		t.Errorf("exit code %d, want %d", res.exit, syscall.ETIMEDOUT)
	}
	onlyStagingExists(t, dir)
}

// TestThreatS13DiskFull: a file system that fills up ends the transfer with ENOSPC. It needs
// root to mount a small tmpfs.
func TestThreatS13DiskFull(t *testing.T) {
	mountPoint := t.TempDir()
	testbin.Tmpfs(t, mountPoint, "size=1m,mode=0755")
	dir := filepath.Join(mountPoint, "staging")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	big := stream(entry("fits", regularMode, make([]byte, 256<<10)), entry("too-big", regularMode, make([]byte, 2<<20)))
	res := runUnpacker(t, dir, fileWith(t, big), []string{"UPDATES_MAX_BYTES=1000000000"}, "--only-regular-files")
	wantCode(t, res.status.Code, uint32(syscall.ENOSPC), res.stderr)
	if res.status.LastName != "too-big" {
		t.Errorf("last name %q, want %q", res.status.LastName, "too-big")
	}
	onlyStagingExists(t, dir)
}
