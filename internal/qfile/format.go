// Package qfile is the qfile stream of docs/qfile.md (spec: shared/spec/qfile.md): the wire
// format shared byte for byte with the reference implementation, the name rules, the limits,
// and the Receiver that dom0's unpacker runs. The sender lives in qfilesend so that dom0 never
// links it.
package qfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"
)

const (
	// HeaderSize is the size of a file_header (spec "Forward stream").
	HeaderSize = 32
	// StatusSize is the size of a result_header (spec "Status").
	StatusSize = 16
	// MaxNameLen is the largest namelen, which counts the name's trailing NUL (S3).
	MaxNameLen = 16383
	// LegalEOF is the status code for a stream that ended inside a name or a payload.
	LegalEOF = 31415926
)

// File type bits of st_mode, as the stream carries them.
const (
	modeTypeMask = 0o170000
	ModeRegular  = 0o100000
	ModeDir      = 0o040000
	ModeSymlink  = 0o120000
)

// Header is a file_header. NameLen 0 marks the end of the transfer.
type Header struct {
	NameLen   uint32
	Mode      uint32
	FileLen   uint64
	Atime     uint32
	AtimeNsec uint32
	Mtime     uint32
	MtimeNsec uint32
}

// Append appends the 32-byte little-endian encoding of h to b.
func (h *Header) Append(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, h.NameLen)
	b = le.AppendUint32(b, h.Mode)
	b = le.AppendUint64(b, h.FileLen)
	b = le.AppendUint32(b, h.Atime)
	b = le.AppendUint32(b, h.AtimeNsec)
	b = le.AppendUint32(b, h.Mtime)
	return le.AppendUint32(b, h.MtimeNsec)
}

// parseHeader decodes a file_header; b holds at least HeaderSize bytes.
func parseHeader(b []byte) Header {
	le := binary.LittleEndian
	return Header{
		NameLen:   le.Uint32(b[0:]),
		Mode:      le.Uint32(b[4:]),
		FileLen:   le.Uint64(b[8:]),
		Atime:     le.Uint32(b[16:]),
		AtimeNsec: le.Uint32(b[20:]),
		Mtime:     le.Uint32(b[24:]),
		MtimeNsec: le.Uint32(b[28:]),
	}
}

// Status is what the receiver answers once: result_header, then result_header_ext.
type Status struct {
	Code     uint32 // an errno value (or LegalEOF); 0 = success
	CRC      uint32 // CRC-32 (IEEE) of every forward byte the receiver consumed
	LastName string // the last name processed, empty if none; sent in the extension
}

// Append appends the status with its last-name extension to b.
func (s Status) Append(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, s.Code)
	b = le.AppendUint32(b, 0) // pad
	b = le.AppendUint64(b, uint64(s.CRC))
	b = le.AppendUint32(b, uint32(len(s.LastName)))
	return append(b, s.LastName...)
}

// ErrNoStatus means the receiver closed the connection without sending a status.
var ErrNoStatus = errors.New("the receiver closed the connection without a status")

// ReadStatus reads the receiver's status from r. The extension is optional: EOF right after
// the 16-byte header means an older receiver (spec "Status").
func ReadStatus(r io.Reader) (Status, error) {
	var b [StatusSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return Status{}, ErrNoStatus
		}
		return Status{}, fmt.Errorf("reading the status: %w", err)
	}
	le := binary.LittleEndian
	st := Status{Code: le.Uint32(b[0:]), CRC: uint32(le.Uint64(b[8:]))}
	if _, err := io.ReadFull(r, b[:4]); err != nil {
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		return st, fmt.Errorf("reading the status extension: %w", err)
	}
	n := le.Uint32(b[:4])
	if n > MaxNameLen {
		return st, fmt.Errorf("status extension: last name of %d bytes: %w", n, syscall.ENAMETOOLONG)
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(r, name); err != nil {
		return st, fmt.Errorf("reading the last name of the status: %w", err)
	}
	st.LastName = string(name)
	return st, nil
}
