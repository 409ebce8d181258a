// Package qfilesend is the sending end of the qfile stream (docs/qfile.md): it walks files
// and directories, streams them with their CRC, and checks the receiver's status. It is a
// package of its own so that dom0, which only receives, never links it.
package qfilesend

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/filekind"
	"pedos.dev/updates/internal/qfile"
)

const (
	bufSize = 256 << 10
	// checkEvery is how many bytes may go out between two looks for an early status, so that
	// a refused transfer stops soon (spec "Status": at least after every file and every
	// 15 MB). A check comes after the buffer that reaches it: 14 MiB + 256 KiB < 15 MB.
	checkEvery = 14 << 20
	dirBatch   = 256 // directory entries read at a time: memory stays flat in big directories
)

// StatusConn is where the receiver's status comes from; its descriptor is polled for an
// early status while sending.
type StatusConn interface {
	io.Reader
	Fd() uintptr
}

// Sender writes one stream. Call Send for each argument, then Finish.
type Sender struct {
	out        io.Writer
	outPipe    int // out's descriptor if it is a pipe (payloads are spliced into it), else -1
	status     StatusConn
	buf        []byte
	crc        uint32
	sinceCheck int
	lastName   string
	files      int
	bytes      int64
	// Progress, if set, is called with the totals so far after each entry and, within a
	// large file, every checkEvery bytes.
	Progress func(files int, bytes int64)
}

// New returns a Sender writing the stream to out and reading the status from status.
func New(out io.Writer, status StatusConn) *Sender {
	s := &Sender{out: out, outPipe: -1, status: status, buf: make([]byte, 0, bufSize)}
	if f, ok := out.(*os.File); ok {
		// Fd also puts the descriptor in blocking mode (os.Pipe's are not), as splice needs.
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			s.outPipe = int(f.Fd())
		}
	}
	return s
}

// RemoteError is a status whose code is not 0: the receiver refused the transfer.
type RemoteError struct {
	Code      uint32
	LastName  string // the last name the receiver processed, "" if it sent none
	LastSent  string // the last name this sender sent
	StatusErr error  // a malformed status extension after the code, or nil
}

func (e *RemoteError) Error() string {
	// The reference sends some errnos negated (a bad directory name's -EILSEQ, docs/qfile.md).
	code, sign := int64(int32(e.Code)), ""
	if code < 0 {
		code, sign = -code, "-"
	}
	what := fmt.Sprintf("error code %d", int32(e.Code))
	if name := unix.ErrnoName(syscall.Errno(code)); name != "" {
		what = fmt.Sprintf("%s%s (%s)", sign, name, qfile.RefusalMeaning(syscall.Errno(code)))
	}
	if e.Code == qfile.LegalEOF {
		what = fmt.Sprintf("the stream ended inside a file (code %d)", e.Code)
	}
	msg := fmt.Sprintf("the receiver refused the transfer: %s; last file sent: %q", what, e.LastSent)
	if e.LastName != "" && e.LastName != e.LastSent {
		msg += fmt.Sprintf(", last file received: %q", e.LastName)
	}
	if e.StatusErr != nil {
		msg += fmt.Sprintf("; the rest of its status was malformed: %v", e.StatusErr)
	}
	return msg
}

// ErrChecksum means the receiver got other bytes than those sent.
var ErrChecksum = errors.New("checksum mismatch: the receiver got other bytes than those sent")

// Send sends path (a regular file, a symlink, or a directory and everything below it) under
// its base name.
func (s *Sender) Send(path string) error {
	if path == "" {
		return errors.New("an empty argument names no file")
	}
	path = filepath.Clean(path)
	name := filepath.Base(path)
	if name == "." || name == ".." || name == "/" {
		return fmt.Errorf("%s: cannot send a file without a name of its own: name it by its path", path)
	}
	return s.send(path, name)
}

func (s *Sender) send(path, name string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return s.sendEntry(path, name, &st)
}

// sendEntry sends one entry; st is its lstat, or nil for a regular file listed by its
// directory (it is stat'ed once open).
func (s *Sender) sendEntry(path, name string, st *unix.Stat_t) error {
	if len(name)+1 > qfile.MaxNameLen {
		return fmt.Errorf("%s: name of %d bytes is too long for the stream", path, len(name))
	}
	var err error
	switch {
	case st == nil || st.Mode&unix.S_IFMT == unix.S_IFREG:
		err = s.sendRegular(path, name)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		err = s.sendDir(path, name, st)
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		err = s.sendSymlink(path, name, st)
	default:
		return fmt.Errorf("%s: cannot send %s: only regular files, directories and symlinks travel in a qfile stream", path, filekind.OfStat(st.Mode))
	}
	if err != nil {
		return err
	}
	s.files++
	// A poll without waiting: a system call per file, against an open and a read or more.
	return s.checkEarlyStatus()
}

func (s *Sender) sendRegular(path, name string) error {
	// Plain descriptors: os.File would try (and fail) to register each file with the poller.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t // of what is open, not of what was listed
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s: changed type while being sent", path)
	}
	if err := s.header(name, &st, uint64(st.Size)); err != nil {
		return err
	}
	if s.outPipe >= 0 && st.Size > bufSize {
		return s.splicePayload(fd, path, st.Size)
	}
	for remaining := st.Size; remaining > 0; {
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return err
			}
		}
		free := s.buf[len(s.buf):cap(s.buf)]
		n, err := readAt(fd, path, free[:min(int64(len(free)), remaining)], st.Size-remaining)
		if err != nil {
			return err
		}
		s.buf = s.buf[:len(s.buf)+n]
		s.bytes += int64(n)
		remaining -= int64(n)
	}
	return nil
}

// splicePayload sends a large payload into the pipe out with splice(2): the pipe takes the
// file's own pages, and the only copy left is the one the CRC needs, a buffer at a time.
// Should the file change while it is being sent, the receiver's CRC tells (ErrChecksum).
func (s *Sender) splicePayload(fd int, path string, size int64) error {
	if err := s.flush(); err != nil { // the header and name go first
		return err
	}
	crcBuf := s.buf[:cap(s.buf)]
	for off := int64(0); off < size; {
		n, err := readAt(fd, path, crcBuf[:min(int64(len(crcBuf)), size-off)], off)
		if err != nil {
			return err
		}
		s.crc = crc32.Update(s.crc, crc32.IEEETable, crcBuf[:n])
		for end := off + int64(n); off < end; {
			spliced, err := unix.Splice(fd, &off, s.outPipe, nil, int(end-off), unix.SPLICE_F_MORE)
			switch {
			case errors.Is(err, unix.EINTR):
			case err != nil:
				return s.sendFailed(err)
			case spliced == 0:
				return fmt.Errorf("%s: shrank while being sent", path)
			}
		}
		s.bytes += int64(n)
		if s.sinceCheck += n; s.sinceCheck >= checkEvery {
			if err := s.checkEarlyStatus(); err != nil {
				return err
			}
		}
	}
	return nil
}

// readAt fills b from fd at offset off (or returns a short count at its end), as pread(2)
// would without interruptions; a file that ends before it should is an error.
func readAt(fd int, path string, b []byte, off int64) (int, error) {
	for {
		n, err := unix.Pread(fd, b, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 && len(b) > 0 {
			return 0, fmt.Errorf("%s: shrank while being sent", path)
		}
		return n, nil
	}
}

func (s *Sender) sendDir(path, name string, st *unix.Stat_t) error {
	// Sent before its contents (created 0700) and after them (mode and times applied).
	if err := s.header(name, st, 0); err != nil {
		return err
	}
	// Not through a link that replaced the directory since its lstat, as
	// sendRegular opens files.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	dir := os.NewFile(uintptr(fd), path)
	defer dir.Close()
	for {
		entries, readErr := dir.ReadDir(dirBatch)
		for _, e := range entries {
			childPath, childName := filepath.Join(path, e.Name()), name+"/"+e.Name()
			if e.Type().IsRegular() {
				err = s.sendEntry(childPath, childName, nil)
			} else {
				err = s.send(childPath, childName)
			}
			if err != nil {
				return err
			}
		}
		if errors.Is(readErr, io.EOF) {
			break
		}
		if readErr != nil {
			return readErr
		}
	}
	return s.header(name, st, 0)
}

func (s *Sender) sendSymlink(path, name string, st *unix.Stat_t) error {
	target, err := os.Readlink(path)
	if err != nil {
		return err
	}
	// The payload is the target, whatever lstat said its size was.
	if err := s.header(name, st, uint64(len(target))); err != nil {
		return err
	}
	return s.write([]byte(target))
}

// header writes the file_header and the name with its NUL.
func (s *Sender) header(name string, st *unix.Stat_t, fileLen uint64) error {
	h := qfile.Header{
		NameLen:   uint32(len(name) + 1),
		Mode:      st.Mode,
		FileLen:   fileLen,
		Atime:     uint32(st.Atim.Sec),
		AtimeNsec: uint32(st.Atim.Nsec),
		Mtime:     uint32(st.Mtim.Sec),
		MtimeNsec: uint32(st.Mtim.Nsec),
	}
	if cap(s.buf)-len(s.buf) < qfile.HeaderSize+len(name)+1 {
		if err := s.flush(); err != nil {
			return err
		}
	}
	s.buf = AppendHeader(s.buf, h)
	s.buf = append(append(s.buf, name...), 0)
	s.lastName = name // a refusal may come while its payload is on the way
	return nil
}

// write adds p to the stream.
func (s *Sender) write(p []byte) error {
	for len(p) > 0 {
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return err
			}
		}
		n := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+n]
		p = p[n:]
	}
	return nil
}

// flush sends the buffer; every forward byte passes here once, so the CRC is taken here.
func (s *Sender) flush() error {
	s.crc = crc32.Update(s.crc, crc32.IEEETable, s.buf)
	_, err := s.out.Write(s.buf)
	s.sinceCheck += len(s.buf)
	s.buf = s.buf[:0]
	if err != nil {
		return s.sendFailed(err)
	}
	if s.sinceCheck >= checkEvery {
		return s.checkEarlyStatus()
	}
	return nil
}

// sendFailed explains a failed write to out. The receiver most likely stopped reading because
// it refused something: its status says what, and is worth more than "broken pipe".
func (s *Sender) sendFailed(err error) error {
	if st, serr := readStatus(s.status); st.Code != 0 {
		return s.remoteError(st, serr)
	}
	return s.withLastSent(fmt.Errorf("sending the stream: %w", err))
}

// withLastSent names the last file sent in an error that does not come from a status.
func (s *Sender) withLastSent(err error) error {
	return fmt.Errorf("%w (last file sent: %q)", err, s.lastName)
}

// checkEarlyStatus reads the status if the receiver already sent one, without waiting. It
// runs after every entry and every checkEvery bytes, which is also when progress is told.
func (s *Sender) checkEarlyStatus() error {
	s.sinceCheck = 0
	if s.Progress != nil {
		s.Progress(s.files, s.bytes)
	}
	fds := []unix.PollFd{{Fd: int32(s.status.Fd()), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	if errors.Is(err, syscall.EINTR) {
		return nil // the next check looks again
	}
	if err != nil {
		return fmt.Errorf("polling for the receiver's status: %w", err)
	}
	if n == 0 {
		return nil
	}
	st, err := readStatus(s.status)
	switch {
	case st.Code != 0:
		return s.remoteError(st, err)
	case err != nil:
		return s.withLastSent(err)
	}
	return fmt.Errorf("the receiver reported success before the end of the stream (last file sent: %q)", s.lastName)
}

// remoteError is the refusal in st; statusErr is what was wrong with the status after its
// code (its last-name extension), if anything: the code is the receiver's word all the same.
func (s *Sender) remoteError(st qfile.Status, statusErr error) error {
	return &RemoteError{Code: st.Code, LastName: st.LastName, LastSent: s.lastName, StatusErr: statusErr}
}

// Sent returns the entries and payload bytes sent so far: after Finish, or after an error,
// the transfer's totals.
func (s *Sender) Sent() (files int, bytes int64) { return s.files, s.bytes }

// Finish sends the end marker and checks the status: its code first, then its CRC.
func (s *Sender) Finish() error {
	var b [qfile.HeaderSize]byte
	if err := s.write(AppendHeader(b[:0], qfile.Header{})); err != nil { // the end marker: all zero
		return err
	}
	if err := s.flush(); err != nil {
		return err
	}
	st, err := readStatus(s.status)
	switch {
	case st.Code != 0:
		return s.remoteError(st, err)
	case err != nil:
		return s.withLastSent(err)
	case st.CRC != s.crc:
		return s.withLastSent(fmt.Errorf("%w (sent %#08x, received %#08x)", ErrChecksum, s.crc, st.CRC))
	}
	return nil
}
