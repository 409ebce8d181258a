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

func TestSendRefusesNamelessPaths(t *testing.T) {
	s := New(answeringReceiver{}, os.Stdin)
	for _, path := range []string{".", "/", "..", "a/.."} {
		if err := s.Send(path); err == nil {
			t.Errorf("Send(%q) succeeded", path)
		}
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
// single large package).
func TestProgressWithinALargeFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "large.rpm")
	const size = 3 * checkEvery
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(src, size); err != nil {
		t.Fatal(err)
	}
	statusR, _ := statusPipe(t)
	s := New(io.Discard, statusR)
	var within []int64
	s.Progress = func(files int, bytes int64) {
		if files == 0 {
			within = append(within, bytes)
		}
	}
	if err := s.Send(src); err != nil {
		t.Fatal(err)
	}
	if len(within) < 2 || within[0] <= 0 || within[len(within)-1] >= size {
		t.Errorf("progress within the file at %v bytes of %d, want at least two points inside it", within, size)
	}
}
