package qfilesend

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"pedos.dev/updates/internal/qfile"
)

// answeringReceiver takes the stream (one Write: it is small) and answers on the status pipe
// with what answer makes of the stream's CRC.
type answeringReceiver struct {
	status *os.File
	answer func(crc uint32) []byte
}

func (r answeringReceiver) Write(p []byte) (int, error) {
	if answer := r.answer(crc32.ChecksumIEEE(p)); answer != nil {
		if _, err := r.status.Write(answer); err != nil {
			return 0, err
		}
	}
	r.status.Close()
	return len(p), nil
}

// statusPipe is the pipe a receiver's status comes back on, closed when the test ends.
func statusPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestFinishChecksStatus(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.rpm")
	if err := os.WriteFile(src, []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		answer  func(crc uint32) []byte
		wantErr string // "" = success
	}{
		{"success", func(crc uint32) []byte { return qfile.Status{CRC: crc, LastName: "a.rpm"}.Append(nil) }, ""},
		{"success-from-an-older-receiver", func(crc uint32) []byte { return qfile.Status{CRC: crc}.Append(nil)[:qfile.StatusSize] }, ""},
		{"checksum-mismatch", func(crc uint32) []byte { return qfile.Status{CRC: crc + 1}.Append(nil) }, `checksum mismatch: the receiver got other bytes than those sent (sent`},
		{"error-first", func(crc uint32) []byte {
			return qfile.Status{Code: uint32(syscall.EDQUOT), CRC: crc + 1, LastName: "a.rpm"}.Append(nil)
		}, `EDQUOT (over the receiver's byte or file limit); last file sent: "a.rpm"`},
		{"legal-eof", func(crc uint32) []byte { return qfile.Status{Code: qfile.LegalEOF}.Append(nil) }, "ended inside a file"},
		// The reference sends a bad directory name's EILSEQ negated.
		{"negative-errno", func(crc uint32) []byte { return qfile.Status{Code: uint32(0xffffffac)}.Append(nil) }, "refused the transfer: -EILSEQ (a name that breaks the receiver's name rules)"},
		// A code without a meaning in the spec keeps the C library's words.
		{"other-errno", func(crc uint32) []byte { return qfile.Status{Code: uint32(syscall.ENOSPC)}.Append(nil) }, "refused the transfer: ENOSPC (no space left on device)"},
		// A malformed extension does not hide the code before it.
		{"bad-extension", func(crc uint32) []byte {
			return binary.LittleEndian.AppendUint32(qfile.Status{Code: uint32(syscall.EIO)}.Append(nil)[:qfile.StatusSize], 0xffffffff)
		}, "refused the transfer: EIO (input/output error); last file sent: \"a.rpm\"; the rest of its status was malformed: status extension: last name of 4294967295 bytes"},
		{"unknown-code", func(crc uint32) []byte { return qfile.Status{Code: 5000}.Append(nil) }, "refused the transfer: error code 5000;"},
		// One byte over the longest name, with all its bytes there, is still malformed.
		{"extension-name-one-too-long", func(crc uint32) []byte {
			return qfile.Status{Code: uint32(syscall.EIO), LastName: strings.Repeat("n", qfile.MaxNameLen+1)}.Append(nil)
		}, "the rest of its status was malformed: status extension: last name of 16384 bytes"},
		// The receiver's last name is told when it is not the one sent last.
		{"other-last-name", func(crc uint32) []byte {
			return qfile.Status{Code: uint32(syscall.EEXIST), LastName: "earlier.rpm"}.Append(nil)
		}, `last file sent: "a.rpm", last file received: "earlier.rpm"`},
		{"no-status", func(uint32) []byte { return nil }, `without a status (last file sent: "a.rpm")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			statusR, statusW := statusPipe(t)
			s := New(answeringReceiver{statusW, tc.answer}, statusR)
			if err := s.Send(src); err != nil {
				t.Fatal(err)
			}
			err := s.Finish()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Finish: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Finish: %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.name == "checksum-mismatch" && !errors.Is(err, ErrChecksum) {
				t.Errorf("Finish: %v is not ErrChecksum", err)
			}
		})
	}
}

// The sender looks for an early status after every file (qfile.md "Status"), so a refusal
// stops it at the next file boundary, however small the files.
func TestSendStopsAtARefusalAfterAFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.rpm")
	if err := os.WriteFile(src, []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	statusR, statusW := statusPipe(t)
	if _, err := statusW.Write(qfile.Status{Code: uint32(syscall.EDQUOT), LastName: "earlier.rpm"}.Append(nil)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err := New(&out, statusR).Send(src)
	var remote *RemoteError
	if !errors.As(err, &remote) || remote.Code != uint32(syscall.EDQUOT) || remote.LastSent != "a.rpm" {
		t.Errorf("Send after a refusal: %v, want the receiver's EDQUOT", err)
	}
}

// refusingReceiver answers the first write with a refusal, then fails it, as a receiver that
// stopped reading does.
type refusingReceiver struct{ status *os.File }

func (r refusingReceiver) Write(p []byte) (int, error) {
	r.status.Write(qfile.Status{Code: uint32(syscall.EDQUOT)}.Append(nil))
	return 0, syscall.EPIPE
}

// A refusal that arrives while the first file's payload is on the way names that file as the
// last one sent, not "".
func TestRefusalDuringTheFirstFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big.rpm")
	if err := os.WriteFile(src, make([]byte, 2*bufSize), 0o644); err != nil {
		t.Fatal(err)
	}
	statusR, statusW := statusPipe(t)
	err := New(refusingReceiver{statusW}, statusR).Send(src)
	var remote *RemoteError
	if !errors.As(err, &remote) || remote.LastSent != "big.rpm" {
		t.Errorf("Send: %v, want the receiver's refusal naming big.rpm as the last file sent", err)
	}
}

// A path without a name of its own is refused before anything is sent: ".." would otherwise
// send the whole parent directory under the name "..", which every receiver refuses only
// after the bytes went out.
func TestSendRefusesNamelessPaths(t *testing.T) {
	statusR, _ := statusPipe(t)
	var out strings.Builder
	s := New(&out, statusR)
	for _, path := range []string{".", "/", "..", "a/.."} {
		if err := s.Send(path); err == nil || !strings.Contains(err.Error(), "without a name of its own") {
			t.Errorf("Send(%q) = %v, want a refusal of the nameless path", path, err)
		}
	}
	if files, _ := s.Sent(); files != 0 || out.Len() != 0 || len(s.buf) != 0 {
		t.Errorf("%d files, %d bytes written and %d buffered after refusals, want none", files, out.Len(), len(s.buf))
	}
}

// A FIFO, a socket or a device is refused by name and type, at the top level and inside a
// directory, rather than skipped: a skipped entry would be a file the receiver silently
// never gets.
func TestSendRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "tree", "fifo")
	if err := os.Mkdir(filepath.Dir(fifo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, filepath.Dir(fifo)} {
		statusR, _ := statusPipe(t)
		err := New(io.Discard, statusR).Send(path)
		if err == nil || !strings.Contains(err.Error(), fifo+": cannot send a named pipe (FIFO): only regular files") {
			t.Errorf("Send(%s) = %v, want a refusal naming the FIFO", path, err)
		}
	}
}

// A file that ends before the size stat gave it is an error, not a loop or a short payload the
// header contradicts. Sysfs attributes say 4096 bytes and hold fewer: a real such file.
func TestSendFileShorterThanItsSize(t *testing.T) {
	const attr = "/sys/kernel/mm/transparent_hugepage/enabled"
	if fi, err := os.Stat(attr); err != nil || fi.Size() <= 100 {
		t.Skipf("no sysfs attribute %s larger than its contents (%v)", attr, err)
	}
	statusR, _ := statusPipe(t)
	err := New(io.Discard, statusR).Send(attr)
	if err == nil || !strings.Contains(err.Error(), attr+": shrank while being sent") {
		t.Errorf("Send(%s) = %v, want an error saying it shrank", attr, err)
	}
}

// A success status before the end marker is no success: the receiver cannot have checked
// what it did not get yet (qfile.md "Status").
func TestEarlySuccessIsAnError(t *testing.T) {
	src := filepath.Join(t.TempDir(), "a.rpm")
	if err := os.WriteFile(src, []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	statusR, statusW := statusPipe(t)
	if _, err := statusW.Write(qfile.Status{}.Append(nil)); err != nil {
		t.Fatal(err)
	}
	err := New(io.Discard, statusR).Send(src)
	if err == nil || !strings.Contains(err.Error(), `the receiver reported success before the end of the stream (last file sent: "a.rpm")`) {
		t.Errorf("Send with a success status waiting: %v", err)
	}
}

// TestSpliceIntoPipe sends a payload larger than the buffer, so spliced, into a pipe from
// os.Pipe (non-blocking until New takes its descriptor), read slower than it is written by the
// real receiver: the bytes and the CRC must arrive whole.
func TestSpliceIntoPipe(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big.rpm")
	payload := make([]byte, 3<<20+17)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	root, err := os.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	streamR, streamW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer statusR.Close()
	received := make(chan error, 1)
	go func() {
		defer streamR.Close()
		defer statusW.Close()
		rc := &qfile.Receiver{Root: root, Limits: qfile.Limits{MaxBytes: 1 << 30, MaxFiles: 10}, NoSync: true}
		st, err := rc.Receive(slowReader{streamR})
		if _, werr := statusW.Write(st.Append(nil)); err == nil {
			err = werr
		}
		received <- err
	}()
	s := New(streamW, statusR)
	if s.outPipe < 0 {
		t.Fatal("the stream pipe was not recognised as a pipe: the splice path is not tested")
	}
	if err := s.Send(src); err != nil {
		t.Fatal(err)
	}
	err = s.Finish()
	streamW.Close()
	if rerr := <-received; rerr != nil {
		t.Fatalf("receiver: %v", rerr)
	}
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "big.rpm"))
	if err != nil || string(got) != string(payload) {
		t.Fatalf("received %d bytes (%v), want the %d sent", len(got), err, len(payload))
	}
}

// slowReader reads at most 4 KiB at a time, so that the sender finds the pipe full.
type slowReader struct{ f *os.File }

func (r slowReader) Read(p []byte) (int, error) { return r.f.Read(p[:min(len(p), 4096)]) }

// Progress is told within a large file too, not only after it (qfile-agent --progress on a
// single large package), whether the payload is copied or spliced into a pipe; the same
// points are where an early refusal is looked for.
func TestProgressWithinALargeFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "large.rpm")
	const size = 3 * checkEvery
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(src, size); err != nil {
		t.Fatal(err)
	}
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeW.Close()
	go func() { io.Copy(io.Discard, pipeR); pipeR.Close() }()
	for _, out := range []io.Writer{io.Discard, pipeW} {
		statusR, _ := statusPipe(t)
		s := New(out, statusR)
		var within []int64
		s.Progress = func(files int, bytes int64) {
			if files == 0 && bytes > 0 && bytes < size {
				within = append(within, bytes)
			}
		}
		if err := s.Send(src); err != nil {
			t.Fatal(err)
		}
		if len(within) < 2 {
			t.Errorf("spliced %v: progress within the file at %v bytes of %d, want at least two points inside it", s.outPipe >= 0, within, size)
		}
	}
}
