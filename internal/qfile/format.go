// Package qfile is the qfile stream of docs/qfile.md (spec: shared/spec/qfile.md): the wire
// format shared byte for byte with the reference implementation, the name rules, the limits,
// and the Receiver that dom0's unpacker runs. The sender lives in qfilesend so that dom0 never
// links it.
package qfile

import (
	"encoding/binary"
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

// refusalMeanings are what a receiver means by the codes the spec gives a
// meaning (spec "Status"), said instead of the C library's words for them
// ("link has been severed").
var refusalMeanings = map[syscall.Errno]string{
	syscall.EINVAL:       "a file type or header field the receiver does not accept",
	syscall.EILSEQ:       "a name that breaks the receiver's name rules",
	syscall.ENOLINK:      "an unsafe symlink target",
	syscall.EDQUOT:       "over the receiver's byte or file limit",
	syscall.ENAMETOOLONG: "a name too long for the stream",
	syscall.EEXIST:       "a name already received",
	syscall.EREMOTEIO:    "the stream ended without its end marker",
	syscall.EPROTO:       "bytes after the stream's end marker",
	syscall.ETIMEDOUT:    "the stream did not end before the receiver's deadline",
}

// RefusalMeaning is what a receiver's status code errno means.
func RefusalMeaning(errno syscall.Errno) string {
	if meaning, ok := refusalMeanings[errno]; ok {
		return meaning
	}
	return errno.Error()
}
