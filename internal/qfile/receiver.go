package qfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/sandbox"
)

// bufSize is the receiver's only buffer: memory stays constant whatever the file sizes.
const bufSize = 256 << 10

// Limits bound one transfer (spec "Receiver rules": limits). Both are checked before
// anything is created (S8).
type Limits struct {
	MaxBytes uint64 // total payload bytes
	MaxFiles uint64 // entries; a directory is sent, and so counted, twice
}

// Receiver unpacks one qfile stream into Root. Every operation is relative to Root's
// descriptor, one name component at a time with O_NOFOLLOW, so nothing can be created outside
// it, and no symlink is followed on the way (S5).
type Receiver struct {
	Root   *os.Root
	Limits Limits
	// OnlyRegularFiles is dom0's update mode: directories and symlinks are refused (S4), and
	// setuid/setgid/sticky and group/other write bits are dropped (S10).
	OnlyRegularFiles bool
	// NoSync skips the file system sync that normally ends a successful transfer (spec
	// "Receiver rules"): for a caller that copies the files elsewhere and makes only its
	// copies durable, as dom0's receive service does.
	NoSync bool
	// Received, if set, is called with each name after it passed validation and was created.
	Received func(name string, size uint64)
}

// Receive reads one stream from r and returns the status to send back. The error says why a
// status is not a success; it names a file only after the name was validated.
func (rc *Receiver) Receive(r io.Reader) (Status, error) {
	root, err := rc.Root.Open(".")
	if err != nil {
		return Status{Code: ErrnoOf(err)}, fmt.Errorf("opening %s: %w", rc.Root.Name(), err)
	}
	defer root.Close()
	// Read the umask (setting it is the only way) and keep it but for the
	// owner's bits: a directory must be created 0700, so that its owner can
	// fill it (spec "Forward stream"); the final modes are set apart.
	umask := unix.Umask(0) &^ 0o700
	unix.Umask(umask)
	u := unpacker{Receiver: rc, src: r, in: bufio.NewReaderSize(r, bufSize), rootFD: int(root.Fd()), umask: uint32(umask)}
	u.dirFD, u.dirName = u.rootFD, "."
	err = u.run()
	u.closeDir()
	st := Status{CRC: u.crc, LastName: u.lastName}
	if err != nil {
		st.Code = ErrnoOf(err)
	}
	return st, err
}

// ErrnoOf is the positive errno that a status reports for err (EIO when err carries none).
func ErrnoOf(err error) uint32 {
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return uint32(errno)
	}
	return uint32(syscall.EIO)
}

// errLegalEOF is the reference's status for a stream cut inside a name or a payload.
const errLegalEOF = syscall.Errno(LegalEOF)

type unpacker struct {
	*Receiver
	src      io.Reader // what in reads: end asks its descriptor, if any, for unread bytes
	in       *bufio.Reader
	crc      uint32
	files    uint64
	bytes    uint64
	lastName string
	// The descriptors are used raw (openat, fchmod, …): an *os.File costs a file 5 more
	// system calls (non-blocking mode, the poller), a third of the small-file rate.
	rootFD  int    // Root's directory
	dirFD   int    // the directory holding the current entry (S5: see enter)
	dirName string // its name below Root, "." for Root itself
	umask   uint32 // the process's, which open(2) applies to a new file's mode
}

// take consumes the next n ≤ bufSize bytes of the stream and adds them to the CRC. The slice
// is valid until the next take; it is short only with an error.
func (u *unpacker) take(n int) ([]byte, error) {
	b, err := u.in.Peek(n)
	u.crc = crc32.Update(u.crc, crc32.IEEETable, b)
	_, _ = u.in.Discard(len(b)) // cannot fail: b is buffered
	return b, err
}

func (u *unpacker) run() error {
	for {
		b, err := u.take(HeaderSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("stream ended without the end marker (S7): %w", syscall.EREMOTEIO)
			}
			return fmt.Errorf("reading a header: %w", err)
		}
		h := parseHeader(b)
		if h.NameLen == 0 {
			return u.end(h)
		}
		if err := u.entry(h); err != nil {
			return err
		}
	}
}

// end handles the end marker: all zero, then nothing after it (S12), then sync.
func (u *unpacker) end(h Header) error {
	// The spec's end marker is a header of zeros; anything else in it is a sender that means
	// something this receiver does not know, not a marker to take on trust.
	if h != (Header{}) {
		return fmt.Errorf("end marker with non-zero fields: %w", syscall.EINVAL)
	}
	// Waiting for EOF would hang with the reference sender, which keeps its end open until it
	// has the status; so only bytes that already arrived are checked (docs/qfile.md, S12):
	// those buffered, and when the marker ended the buffer, those the kernel holds for us.
	pending := u.in.Buffered()
	if f, ok := u.src.(interface{ Fd() uintptr }); ok && pending == 0 {
		pending, _ = unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ) // FIONREAD: a pipe, socket or file
	}
	if pending > 0 {
		return fmt.Errorf("%d bytes after the end marker (S12): %w", pending, syscall.EPROTO)
	}
	if u.NoSync {
		return nil
	}
	if err := unix.Syncfs(u.rootFD); err != nil {
		return fmt.Errorf("syncing the file system of %s: %w", u.Root.Name(), err)
	}
	return nil
}

// entry receives one file, directory or symlink.
func (u *unpacker) entry(h Header) error {
	if h.NameLen > MaxNameLen {
		return fmt.Errorf("namelen %d > %d (S3): %w", h.NameLen, MaxNameLen, syscall.ENAMETOOLONG)
	}
	untrustedName, err := u.take(int(h.NameLen))
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("stream ended inside a name (S6): %w", errLegalEOF)
	}
	if err != nil {
		return fmt.Errorf("reading the stream: %w", err)
	}
	// The name ends at its first NUL (spec "Forward stream").
	if i := bytes.IndexByte(untrustedName, 0); i >= 0 {
		untrustedName = untrustedName[:i]
	}
	if problem := nameProblem(untrustedName); problem != "" {
		return fmt.Errorf("refused a name (S1, S2): %s: %w", problem, syscall.EILSEQ)
	}
	name := string(untrustedName)
	u.lastName = name
	if err := u.checkEntry(name, h); err != nil {
		return err
	}
	if err := u.enter(path.Dir(name)); err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	base := path.Base(name)
	switch h.Mode & modeTypeMask {
	case ModeRegular:
		err = u.regular(base, h)
	case ModeDir:
		err = u.directory(base, h)
	default:
		err = u.symlink(name, base, h)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	if u.Received != nil {
		u.Received(name, h.FileLen)
	}
	return nil
}

// checkEntry applies the type, time and limit rules before anything is created.
func (u *unpacker) checkEntry(name string, h Header) error {
	switch h.Mode & modeTypeMask {
	case ModeRegular:
	case ModeDir, ModeSymlink:
		if u.OnlyRegularFiles {
			return fmt.Errorf("%q: only regular files are accepted (S4): %w", name, syscall.EINVAL)
		}
		// A directory carries no payload (spec "Forward stream"): its bytes would be read as
		// the next header, so the stream would say one thing and mean another.
		if h.Mode&modeTypeMask == ModeDir && h.FileLen != 0 {
			return fmt.Errorf("%q: directory with a payload: %w", name, syscall.EINVAL)
		}
	default:
		return fmt.Errorf("%q: file type %#o is never accepted (S4): %w", name, h.Mode&modeTypeMask, syscall.EINVAL)
	}
	if h.AtimeNsec >= 1e9 || h.MtimeNsec >= 1e9 {
		return fmt.Errorf("%q: nanoseconds >= 10^9 (S10): %w", name, syscall.EINVAL)
	}
	if u.files >= u.Limits.MaxFiles {
		return fmt.Errorf("%q: over the limit of %d files (S8): %w", name, u.Limits.MaxFiles, syscall.EDQUOT)
	}
	if h.FileLen > u.Limits.MaxBytes-u.bytes {
		return fmt.Errorf("%q: %d bytes, over the limit of %d bytes in all (S8): %w",
			name, h.FileLen, u.Limits.MaxBytes, syscall.EDQUOT)
	}
	u.files++
	u.bytes += h.FileLen
	return nil
}

// enter makes u.dirFD the directory dirName, opened one component at a time from Root with
// O_NOFOLLOW|O_DIRECTORY: a symlink (ELOOP) or anything else that is not a directory
// (ENOTDIR) stops it, so nothing is ever created through a symlink (S5). The entries of a
// directory arrive together, so the last one stays open; nothing in a transfer can replace it.
func (u *unpacker) enter(dirName string) error {
	if dirName == u.dirName {
		return nil
	}
	u.closeDir()
	if dirName == "." {
		return nil
	}
	fd := u.rootFD
	for component := range strings.SplitSeq(dirName, "/") {
		sub, err := unix.Openat(fd, component, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, syscall.ENOTDIR) && isSymlink(fd, component) {
			err = syscall.ELOOP // O_DIRECTORY is checked first; the symlink is the cause
		}
		if fd != u.rootFD {
			unix.Close(fd)
		}
		if errors.Is(err, syscall.ELOOP) {
			return fmt.Errorf("%q is a symlink (S5): %w", component, err)
		}
		if errors.Is(err, syscall.ENOENT) && u.OnlyRegularFiles {
			return fmt.Errorf("opening directory %q: %w (only regular files are taken: a name with \"/\" names a file in a directory no stream can make)", component, err)
		}
		if err != nil {
			return fmt.Errorf("opening directory %q: %w", component, err)
		}
		fd = sub
	}
	u.dirFD, u.dirName = fd, dirName
	return nil
}

// isSymlink says whether name in dirFD is a symlink; it only picks the error to report.
func isSymlink(dirFD int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirFD, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// closeDir closes the subdirectory held open, if any: u.dirFD is Root's again.
func (u *unpacker) closeDir() {
	if u.dirFD != u.rootFD {
		unix.Close(u.dirFD)
	}
	u.dirFD, u.dirName = u.rootFD, "."
}

// regular creates base (a single checked component) in the current directory. O_EXCL: a name
// received twice is EEXIST (S9), and with O_CREAT it never follows a symlink. The file is
// created with its final permissions when the umask lets it, saving an fchmod a file; the
// special bits never are, since the first write would clear them again.
func (u *unpacker) regular(base string, h Header) error {
	mode := u.fileMode(h.Mode)
	fd, err := unix.Openat(u.dirFD, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0o777)
	if err != nil {
		return err
	}
	if err := u.copyPayload(fd, h.FileLen); err != nil {
		unix.Close(fd)
		return err
	}
	return u.settle(fd, h, mode&0o777&^u.umask != mode)
}

// settle applies the times of h (and, if chmod, its mode) to the open descriptor fd, and
// closes it. Both go through the descriptor: no second lookup of the name, and the only
// forms the sandbox's seccomp filter allows.
func (u *unpacker) settle(fd int, h Header, chmod bool) error {
	var err error
	if chmod {
		err = unix.Fchmod(fd, u.fileMode(h.Mode))
	}
	if err == nil {
		err = sandbox.Futimens(fd, [2]unix.Timespec{
			{Sec: int64(h.Atime), Nsec: int64(h.AtimeNsec)},
			{Sec: int64(h.Mtime), Nsec: int64(h.MtimeNsec)},
		})
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}

func (u *unpacker) copyPayload(fd int, size uint64) error {
	for size > 0 {
		// Whatever one read brought, not a full buffer: the sender refills the pipe meanwhile.
		_, err := u.in.Peek(1)
		if err == nil {
			var chunk []byte
			chunk, err = u.take(int(min(size, uint64(u.in.Buffered()))))
			if werr := writeAll(fd, chunk); werr != nil {
				return werr
			}
			size -= uint64(len(chunk))
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("stream ended inside a file (S6): %w", errLegalEOF)
		}
		if err != nil {
			return fmt.Errorf("reading the stream: %w", err)
		}
	}
	return nil
}

// writeAll writes b to fd, retrying short writes and interruptions as os.File.Write does.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// directory creates a directory 0700 on its first visit, and applies its mode and times on
// the second, once its contents are in (spec "Forward stream").
func (u *unpacker) directory(base string, h Header) error {
	err := unix.Mkdirat(u.dirFD, base, 0o700)
	if err == nil || !errors.Is(err, syscall.EEXIST) {
		return err
	}
	fd, err := unix.Openat(u.dirFD, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("exists and is not a directory: %w", syscall.EEXIST)
	}
	if err != nil {
		return err
	}
	return u.settle(fd, h, true)
}

func (u *unpacker) symlink(name, base string, h Header) error {
	// A target is a path like a name, so the name's limit (S3); it also keeps take's read
	// within the buffer.
	if h.FileLen > MaxNameLen {
		return fmt.Errorf("symlink target of %d bytes: %w", h.FileLen, syscall.ENAMETOOLONG)
	}
	untrustedTarget, err := u.take(int(h.FileLen))
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("stream ended inside a symlink target (S6): %w", errLegalEOF)
	}
	if err != nil {
		return fmt.Errorf("reading the stream: %w", err)
	}
	if !validSymlinkTarget(name, untrustedTarget) {
		return fmt.Errorf("unsafe symlink target (S5): %w", syscall.ENOLINK)
	}
	return unix.Symlinkat(string(untrustedTarget), u.dirFD, base)
}

// fileMode is the mode to apply: permissions and, outside dom0's update mode, the
// setuid/setgid/sticky bits; in that mode no special bits and no group/other write (S10).
func (u *unpacker) fileMode(untrustedMode uint32) uint32 {
	if u.OnlyRegularFiles {
		return untrustedMode & 0o755
	}
	return untrustedMode & 0o7777
}
