package qfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

// entry encodes one stream entry as the reference sender writes it: the name with its NUL.
func entry(name string, mode uint32, payload []byte) []byte {
	h := Header{NameLen: uint32(len(name) + 1), Mode: mode, FileLen: uint64(len(payload)),
		Atime: 1612324082, AtimeNsec: 500000000, Mtime: 1612324082, MtimeNsec: 500000000}
	return rawEntry(h, append([]byte(name), 0), payload)
}

// rawEntry encodes an entry with any header, name bytes and payload.
func rawEntry(h Header, name, payload []byte) []byte {
	return append(append(encodeHeader(h), name...), payload...)
}

// encodeHeader is a file_header on the wire: Header's fields are in wire order and of wire
// sizes, so encoding/binary writes it exactly (qfilesend writes it field by field).
func encodeHeader(h Header) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, h)
	if err != nil {
		panic(err)
	}
	return b
}

// endMarker is the all-zero header that ends a stream.
var endMarker = encodeHeader(Header{})

// stream joins entries and ends them with the end marker.
func stream(entries ...[]byte) []byte {
	return append(bytes.Join(entries, nil), endMarker...)
}

// treeOf lists what is below dir, one sorted line per entry in the form of EXPECTED.tsv:
// "f 0644 path size=N", "d 0755 path", "l 0777 path -> target". With details, regular files
// also show their CRC and files and directories their mtime.
func treeOf(t testing.TB, dir string, details bool) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		mode := fi.Mode()
		perm := uint32(mode.Perm())
		for bit, special := range map[uint32]fs.FileMode{0o4000: fs.ModeSetuid, 0o2000: fs.ModeSetgid, 0o1000: fs.ModeSticky} {
			if mode&special != 0 {
				perm |= bit
			}
		}
		var line string
		switch {
		case mode.IsRegular():
			line = fmt.Sprintf("f %04o %s size=%d", perm, rel, fi.Size())
			if details {
				line += fmt.Sprintf(" crc=%08x", fileCRC(t, path))
			}
		case mode.IsDir():
			line = fmt.Sprintf("d %04o %s", perm, rel)
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return appendLine(&lines, fmt.Sprintf("l %04o %s -> %s", perm, rel, target))
		default:
			line = fmt.Sprintf("? %v %s", mode, rel)
		}
		if details {
			line += fmt.Sprintf(" mtime=%d", fi.ModTime().UnixNano())
		}
		return appendLine(&lines, line)
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	slices.Sort(lines)
	return lines
}

func appendLine(lines *[]string, line string) error {
	*lines = append(*lines, line)
	return nil
}

func fileCRC(t testing.TB, path string) uint32 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum32()
}

// stagingDir returns an empty DIR inside a parent that holds nothing else, so that
// onlyStagingExists can tell whether anything was written beside it.
func stagingDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "staging")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// onlyStagingExists fails the test if anything but DIR exists beside it.
func onlyStagingExists(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(dir) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("outside DIR: %q (want only %q)", names, filepath.Base(dir))
	}
}

// unpackResult is what the real qfile-dom0-unpacker did.
type unpackResult struct {
	status Status
	exit   int
	stderr string
}

// runUnpacker runs the real qfile-dom0-unpacker on DIR with stdin, as the current user,
// and checks that its stdout holds exactly one status.
func runUnpacker(t testing.TB, dir string, stdin *os.File, env []string, args ...string) unpackResult {
	t.Helper()
	cmd := exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), append([]string{currentUser(), dir}, args...)...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("running qfile-dom0-unpacker: %v", err)
	}
	st, ok := parseStatus(stdout.Bytes())
	if !ok {
		t.Fatalf("stdout is not exactly one status: %q\nstderr: %s", stdout.Bytes(), stderr.Bytes())
	}
	return unpackResult{st, cmd.ProcessState.ExitCode(), stderr.String()}
}

// parseStatus decodes b if it is exactly one status with its extension (spec "Status").
func parseStatus(b []byte) (Status, bool) {
	var fixed struct {
		Code, Pad uint32
		CRC       uint64
		NameLen   uint32
	}
	n, err := binary.Decode(b, binary.LittleEndian, &fixed)
	if err != nil || len(b) != n+int(fixed.NameLen) {
		return Status{}, false
	}
	st := Status{Code: fixed.Code, CRC: uint32(fixed.CRC), LastName: string(b[n:])}
	return st, bytes.Equal(st.Append(nil), b)
}

// fileWith returns an open file (outside any staging dir) holding b, to serve as stdin.
func fileWith(t testing.TB, b []byte) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stream")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pipeWith returns the read end of a pipe holding b. The write end is closed, unless stall:
// then it stays open until the test ends, as a sender that stops sending.
func pipeWith(t testing.TB, b []byte, stall bool) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if !stall {
		w.Close()
	}
	return r
}

// currentUser is USER for the unpacker: ourselves, so that it does not switch.
func currentUser() string {
	return fmt.Sprint(os.Geteuid())
}

// wantCode checks a status code, naming the errno on failure.
func wantCode(t testing.TB, got, want uint32, stderr string) {
	t.Helper()
	if got != want {
		t.Errorf("status code %d (%v), want %d (%v); stderr: %s",
			got, syscall.Errno(got), want, syscall.Errno(want), strings.TrimSpace(stderr))
	}
}
