package qfilesend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"

	"pedos.dev/updates/internal/qfile"
)

// The encoding of a file_header and the decoding of a status are the sender's half of the
// wire format; qfile holds the receiver's half, which is all that dom0 links.

// AppendHeader appends the 32-byte little-endian encoding of h to b (spec "Forward stream").
func AppendHeader(b []byte, h qfile.Header) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, h.NameLen)
	b = le.AppendUint32(b, h.Mode)
	b = le.AppendUint64(b, h.FileLen)
	b = le.AppendUint32(b, h.Atime)
	b = le.AppendUint32(b, h.AtimeNsec)
	b = le.AppendUint32(b, h.Mtime)
	return le.AppendUint32(b, h.MtimeNsec)
}

// errNoStatus means the receiver closed the connection without sending a status.
var errNoStatus = errors.New("the receiver closed the connection without a status")

// readStatus reads the receiver's status from r. The extension is optional: EOF right after
// the 16-byte header means an older receiver (spec "Status").
func readStatus(r io.Reader) (qfile.Status, error) {
	var b [qfile.StatusSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return qfile.Status{}, errNoStatus
		}
		return qfile.Status{}, fmt.Errorf("reading the status: %w", err)
	}
	le := binary.LittleEndian
	st := qfile.Status{Code: le.Uint32(b[0:]), CRC: uint32(le.Uint64(b[8:]))}
	if _, err := io.ReadFull(r, b[:4]); err != nil {
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		return st, fmt.Errorf("reading the status extension: %w", err)
	}
	n := le.Uint32(b[:4])
	if n > qfile.MaxNameLen {
		return st, fmt.Errorf("status extension: last name of %d bytes: %w", n, syscall.ENAMETOOLONG)
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(r, name); err != nil {
		return st, fmt.Errorf("reading the last name of the status: %w", err)
	}
	st.LastName = string(name)
	return st, nil
}
