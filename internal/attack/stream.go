package attack

import (
	"bytes"

	"pedos.dev/updates/internal/qfile"
	"pedos.dev/updates/internal/qfile/qfilesend"
)

// Stream builds a hand-made qfile stream (docs/qfile.md), well-formed or
// not: what an attacker who owns the UpdateVM writes instead of qfile-agent.
type Stream struct{ buf bytes.Buffer }

// Regular file modes as the stream carries them.
const (
	modeRegular = qfile.ModeRegular | 0o644
	modeDir     = qfile.ModeDir | 0o755
	modeSymlink = qfile.ModeSymlink | 0o777
)

// Entry appends a header whose namelen counts name plus its NUL, the name
// with its NUL, and the payload; filelen is len(payload).
func (s *Stream) Entry(mode uint32, name string, payload []byte) *Stream {
	return s.Header(qfile.Header{NameLen: uint32(len(name) + 1), Mode: mode, FileLen: uint64(len(payload))}).
		Raw([]byte(name + "\x00")).Raw(payload)
}

// File appends a regular file.
func (s *Stream) File(name string, payload []byte) *Stream {
	return s.Entry(modeRegular, name, payload)
}

// Header appends a header exactly as given.
func (s *Stream) Header(h qfile.Header) *Stream {
	s.buf.Write(qfilesend.AppendHeader(nil, h))
	return s
}

// End appends the end marker (a header of zeros).
func (s *Stream) End() *Stream { return s.Header(qfile.Header{}) }

// Raw appends bytes as they are.
func (s *Stream) Raw(b []byte) *Stream {
	s.buf.Write(b)
	return s
}

// Bytes is the stream so far.
func (s *Stream) Bytes() []byte { return s.buf.Bytes() }
