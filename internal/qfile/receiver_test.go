package qfile

import (
	"bufio"
	"bytes"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// vectorRow is one line of testdata/vectors/EXPECTED.tsv: what the reference receiver did.
type vectorRow struct {
	file, mode string
	code       uint32
	crc        uint32
	consumed   int
	tree       []string
}

func readVectors(t testing.TB) []vectorRow {
	t.Helper()
	f, err := os.Open("testdata/vectors/EXPECTED.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []vectorRow
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Split(lines.Text(), "\t")
		if strings.HasPrefix(fields[0], "#") || fields[0] == "file" {
			continue
		}
		if len(fields) != 7 || fields[2] != "{}" {
			t.Fatalf("EXPECTED.tsv: unexpected row %q", lines.Text())
		}
		code, err1 := strconv.ParseUint(fields[3], 10, 32)
		crc, err2 := strconv.ParseUint(strings.TrimPrefix(fields[4], "0x"), 16, 32)
		consumed, err3 := strconv.Atoi(fields[5])
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("EXPECTED.tsv: unparsable row %q", lines.Text())
		}
		var tree []string
		if fields[6] != "" {
			tree = strings.Split(fields[6], "|")
			slices.Sort(tree)
		}
		rows = append(rows, vectorRow{fields[0], fields[1], uint32(code), uint32(crc), consumed, tree})
	}
	if len(rows) == 0 {
		t.Fatal("EXPECTED.tsv: no rows")
	}
	return rows
}

// TestReferenceVectors checks our receiver against streams written by the reference sender
// and what the reference receiver answered: the same code, the same CRC over the same
// consumed bytes, the same tree (modes included: none of these streams hits a deliberate
// difference).
func TestReferenceVectors(t *testing.T) {
	for _, row := range readVectors(t) {
		t.Run(row.file+"/"+row.mode, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/vectors", row.file))
			if err != nil {
				t.Fatal(err)
			}
			dir := stagingDir(t)
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			rc := &Receiver{Root: root, Limits: Limits{MaxBytes: 4 << 30, MaxFiles: 4096},
				OnlyRegularFiles: row.mode == "regular-only"}
			st, err := rc.Receive(bytes.NewReader(data))
			wantCode(t, st.Code, row.code, errString(err))
			if st.CRC != row.crc {
				t.Errorf("CRC %#08x, want %#08x", st.CRC, row.crc)
			}
			if got := crc32.ChecksumIEEE(data[:row.consumed]); got != st.CRC {
				t.Errorf("CRC %#08x is not that of the %d bytes the reference consumed (%#08x)", st.CRC, row.consumed, got)
			}
			if got := treeOf(t, dir, false); !slices.Equal(got, row.tree) {
				t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(row.tree, "\n"))
			}
			onlyStagingExists(t, dir)
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzReceiver feeds arbitrary streams to the receiver, in both modes: it must not panic,
// must always produce a status (a failure always with an error and a non-zero code), and
// must never create anything outside DIR.
func FuzzReceiver(f *testing.F) {
	for _, row := range readVectors(f) {
		if data, err := os.ReadFile(filepath.Join("testdata/vectors", row.file)); err == nil {
			f.Add(data, row.mode == "regular-only")
		}
	}
	f.Add(stream(entry("a", ModeDir|0o755, nil), entry("a/l", ModeSymlink|0o777, []byte("b")),
		entry("a/l/x", ModeRegular|0o644, []byte("x")), entry("a", ModeDir|0o755, nil)), false)
	f.Add(stream(entry("a", ModeRegular|0o644, []byte("1")), entry("a", ModeRegular|0o644, []byte("2"))), true)
	// On a tmpfs when there is one: the receiver's syncfs would otherwise flush the whole
	// disk at every input.
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	f.Fuzz(func(t *testing.T, untrustedStream []byte, onlyRegular bool) {
		parent, err := os.MkdirTemp(base, "pedos-fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(parent)
		dir := filepath.Join(parent, "staging")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		rc := &Receiver{Root: root, Limits: Limits{MaxBytes: 1 << 20, MaxFiles: 64}, OnlyRegularFiles: onlyRegular}
		st, err := rc.Receive(bytes.NewReader(untrustedStream))
		if (st.Code == 0) != (err == nil) {
			t.Fatalf("status code %d with error %v", st.Code, err)
		}
		if st.Code == 0 && st.CRC != crc32.ChecksumIEEE(untrustedStream) {
			t.Fatalf("success with CRC %#08x, not that of the whole stream", st.CRC)
		}
		onlyStagingExists(t, dir)
	})
}

// An EDQUOT says which limit the entry broke, and the entry's size for bytes (S8).
func TestLimitMessages(t *testing.T) {
	for _, tc := range []struct {
		stream []byte
		want   string
	}{
		{stream(entry("a", regularMode, nil), entry("b", regularMode, nil)), `"b": over the limit of 1 files (S8)`},
		{stream(entry("a", regularMode, make([]byte, 101))), `"a": 101 bytes, over the limit of 100 bytes in all (S8)`},
	} {
		root, err := os.OpenRoot(stagingDir(t))
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		rc := &Receiver{Root: root, Limits: Limits{MaxBytes: 100, MaxFiles: 1}, OnlyRegularFiles: true}
		st, err := rc.Receive(bytes.NewReader(tc.stream))
		if st.Code != uint32(syscall.EDQUOT) || !strings.Contains(errString(err), tc.want) {
			t.Errorf("status %d, %v; want EDQUOT saying %q", st.Code, err, tc.want)
		}
	}
}

// Garbage after the end marker is refused also when the marker ends exactly
// where the receiver's buffer does, so that the garbage is still in the
// kernel's hands (a regular file here; a pipe or socket alike): S12 cannot
// be dodged by choosing the stream's length. The real unpacker, confined, is
// asked too: its seccomp filter must let that one ioctl (FIONREAD) through.
func TestGarbageAfterEndMarkerAtBufferEdge(t *testing.T) {
	payload := make([]byte, bufSize-2*HeaderSize-len("a\x00"))
	whole := stream(entry("a", regularMode, payload))
	if len(whole) != bufSize {
		t.Fatalf("the stream is %d bytes, want %d", len(whole), bufSize)
	}
	for _, garbage := range []string{"", "GARBAGE"} {
		f, err := os.CreateTemp(t.TempDir(), "stream")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(append(slices.Clone(whole), garbage...)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(stagingDir(t))
		if err != nil {
			t.Fatal(err)
		}
		rc := &Receiver{Root: root, Limits: Limits{MaxBytes: 1 << 20, MaxFiles: 4}, OnlyRegularFiles: true, NoSync: true}
		st, err := rc.Receive(f)
		want := uint32(0)
		if garbage != "" {
			want = uint32(syscall.EPROTO)
		}
		if st.Code != want || (garbage != "" && !strings.Contains(errString(err), "7 bytes after the end marker (S12)")) {
			t.Errorf("%d bytes after the marker: status %d, %v; want %d", len(garbage), st.Code, err, want)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if got := runUnpacker(t, stagingDir(t), f, nil); got.status.Code != want {
			t.Errorf("%d bytes after the marker, the confined unpacker: status %d (%s); want %d", len(garbage), got.status.Code, got.stderr, want)
		}
		root.Close()
		f.Close()
	}
}
