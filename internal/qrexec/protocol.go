// Package qrexec carries service calls between domains (spec/qrexec.md,
// docs/qrexec-protocol.md): the message protocol, the dom0 daemon that
// decides calls with the policy, the agent that runs them in a domain, the
// caller's side, and the transports (Unix sockets, vsock, a process's stdio).
package qrexec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"pedos.dev/updates/internal/qrexec/policy"
)

// ProtocolVersion is sent in every hello; a peer with another version is
// refused.
const ProtocolVersion = 1

// Limits on message payloads.
const (
	headerLen     = 8
	MaxDataLen    = 64 << 10 // stdin, stdout, stderr
	MaxRequestLen = 64 << 10 // call, exec-service, exec-command
)

// MsgType is the first header field of a message.
type MsgType uint32

// The message set (docs/qrexec-protocol.md).
const (
	MsgHello       MsgType = 1  // u32 protocol version, both ways, first
	MsgCall        MsgType = 2  // domain → daemon: Request{Target, Service, Argument}
	MsgExecService MsgType = 3  // dom0 → agent: Request{Source, Target, Service, Argument, User}
	MsgExecCommand MsgType = 4  // dom0 → agent: Request{User, Command}
	MsgAccept      MsgType = 5  // empty: the call runs, data follows
	MsgRefuse      MsgType = 6  // u32 exit code: 125, 126 or 127; ends the call
	MsgStdin       MsgType = 7  // caller → service bytes; empty = EOF
	MsgStdout      MsgType = 8  // service → caller bytes; empty = EOF
	MsgStderr      MsgType = 9  // command → dom0 caller bytes; empty = EOF
	MsgExit        MsgType = 10 // u32 exit status 0–255; ends the call
)

// Exit codes of a call that did not run (spec/qrexec.md "Caller side").
const (
	ExitFailure  = 125 // qrexec itself failed
	ExitRefused  = 126 // refused by policy (or a malformed request)
	ExitNotFound = 127 // no such service in the target
)

// ErrProtocol marks a peer that broke the protocol; the connection is
// dropped and the event logged (C6).
var ErrProtocol = errors.New("qrexec protocol violation")

// maxPayload is the exact (fixed) or largest payload of each message type.
func maxPayload(t MsgType) (max int, fixed bool) {
	switch t {
	case MsgHello, MsgRefuse, MsgExit:
		return 4, true
	case MsgAccept:
		return 0, true
	case MsgCall, MsgExecService, MsgExecCommand:
		return MaxRequestLen, false
	case MsgStdin, MsgStdout, MsgStderr:
		return MaxDataLen, false
	}
	return -1, false
}

// ReadMessage reads one message into buf and returns its type and payload,
// a slice of buf. Unknown types, lengths over the type's limit and payloads
// longer than buf are ErrProtocol: a caller expecting a 4-byte hello passes
// a 4-byte buf. Nothing is read past the message.
func ReadMessage(r io.Reader, buf []byte) (MsgType, []byte, error) {
	t, n, err := readHeader(r)
	if err != nil {
		return 0, nil, err
	}
	if n > len(buf) {
		return 0, nil, fmt.Errorf("%w: message type %d of %d bytes where at most %d are expected", ErrProtocol, t, n, len(buf))
	}
	payload := buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, truncated(t, err)
	}
	return t, payload, nil
}

// readHeader reads and checks a message header: its type is known and its
// length within the type's limit. The payload, n bytes, follows in r.
func readHeader(r io.Reader) (t MsgType, n int, err error) {
	var header [headerLen]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return 0, 0, err
	}
	t = MsgType(binary.LittleEndian.Uint32(header[0:]))
	untrustedLen := binary.LittleEndian.Uint32(header[4:])
	max, fixed := maxPayload(t)
	if max < 0 {
		return 0, 0, fmt.Errorf("%w: unknown message type %d", ErrProtocol, t)
	}
	if untrustedLen > uint32(max) || fixed && untrustedLen != uint32(max) {
		return 0, 0, fmt.Errorf("%w: message type %d with length %d", ErrProtocol, t, untrustedLen)
	}
	return t, int(untrustedLen), nil
}

// truncated is the error for a connection that ended inside the payload of
// a message of type t.
func truncated(t MsgType, err error) error {
	return fmt.Errorf("%w: truncated message type %d: %w", ErrProtocol, t, err)
}

// readUint32Message reads a message that must be of type want and returns its
// u32 payload.
func readUint32Message(r io.Reader, want MsgType) (uint32, error) {
	var buf [4]byte
	t, payload, err := ReadMessage(r, buf[:])
	if err != nil {
		return 0, err
	}
	if t != want {
		return 0, fmt.Errorf("%w: got message type %d, want %d", ErrProtocol, t, want)
	}
	return binary.LittleEndian.Uint32(payload), nil
}

// appendMessage appends a framed message to b.
func appendMessage(b []byte, t MsgType, payload []byte) []byte {
	return append(appendHeader(b, t, len(payload)), payload...)
}

// appendHeader appends the header of a message of type t with an n-byte
// payload to b.
func appendHeader(b []byte, t MsgType, n int) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(t))
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

func uint32Payload(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// helloMessage is the framed hello every side sends first.
var helloMessage = appendMessage(nil, MsgHello, uint32Payload(ProtocolVersion))

// readHello checks the peer's hello.
func readHello(r io.Reader) error {
	v, err := readUint32Message(r, MsgHello)
	if err != nil {
		return fmt.Errorf("reading hello: %w", err)
	}
	if v != ProtocolVersion {
		return fmt.Errorf("%w: peer speaks protocol version %d, we speak %d", ErrProtocol, v, ProtocolVersion)
	}
	return nil
}

// Request is the payload of MsgCall, MsgExecService and MsgExecCommand: six
// strings, each a u16 little-endian length and the bytes, in this order.
// Which fields a message type uses, and their syntax, is checked by
// DecodeRequest.
type Request struct {
	Source   string // exec-service: the calling domain, set by dom0
	Target   string // call, exec-service: the target as the caller named it
	Service  string
	Argument string
	User     string // exec-service (policy user=), exec-command
	Command  string // exec-command: a shell command line
}

func (r Request) fields() []string {
	return []string{r.Source, r.Target, r.Service, r.Argument, r.User, r.Command}
}

// Encode returns the payload of r, or an error if it exceeds MaxRequestLen.
func (r Request) Encode() ([]byte, error) {
	var b []byte
	for _, f := range r.fields() {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	if len(b) > MaxRequestLen {
		return nil, fmt.Errorf("request of %d bytes exceeds the limit of %d", len(b), MaxRequestLen)
	}
	return b, nil
}

// DecodeRequest parses and checks the payload of a request message of type
// t. Names and arguments are checked here, before any policy (C4).
func DecodeRequest(t MsgType, untrustedPayload []byte) (Request, error) {
	var untrustedFields [6]string // the fields of Request, in order
	rest := untrustedPayload
	for i := range untrustedFields {
		if len(rest) < 2 {
			return Request{}, fmt.Errorf("%w: request truncated in field %d", ErrProtocol, i)
		}
		n := int(binary.LittleEndian.Uint16(rest))
		if len(rest)-2 < n {
			return Request{}, fmt.Errorf("%w: request field %d overruns the message", ErrProtocol, i)
		}
		untrustedFields[i], rest = string(rest[2:2+n]), rest[2+n:]
	}
	if len(rest) != 0 {
		return Request{}, fmt.Errorf("%w: %d bytes after the request", ErrProtocol, len(rest))
	}
	r := Request{untrustedFields[0], untrustedFields[1], untrustedFields[2], untrustedFields[3], untrustedFields[4], untrustedFields[5]}
	if err := r.check(t); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return r, nil
}

// ErrInvalidRequest marks a well-framed request with a bad name, argument or
// field; the call is refused with ExitRefused.
var ErrInvalidRequest = errors.New("invalid request")

func (r Request) check(t MsgType) error {
	serviceCall := t == MsgCall || t == MsgExecService
	switch {
	case t != MsgCall && t != MsgExecService && t != MsgExecCommand:
		return fmt.Errorf("message type %d is not a request", t)
	case serviceCall && !policy.ValidService(r.Service):
		return fmt.Errorf("service name %s", Loggable(r.Service))
	case serviceCall && !policy.ValidArgument(r.Argument):
		return fmt.Errorf("service argument %s", Loggable(r.Argument))
	case serviceCall && !policy.ValidRequestedTarget(r.Target):
		return fmt.Errorf("target %s", Loggable(r.Target))
	case t == MsgCall && (r.Source != "" || r.User != "" || r.Command != ""):
		return errors.New("a call names only target, service and argument")
	case t == MsgExecService && !policy.ValidDomainName(r.Source):
		return fmt.Errorf("source %s", Loggable(r.Source))
	case t != MsgCall && r.User != "" && !policy.ValidUser(r.User):
		return fmt.Errorf("user %s", Loggable(r.User))
	case t == MsgExecService && r.Command != "":
		return errors.New("exec-service takes no command")
	case t == MsgExecCommand && (r.Source != "" || r.Target != "" || r.Service != "" || r.Argument != ""):
		return errors.New("exec-command names only user and command")
	case t == MsgExecCommand && (r.Command == "" || strings.IndexByte(r.Command, 0) >= 0):
		return errors.New("command empty or with a NUL byte")
	}
	return nil
}

// maxLoggedLen is how much of an untrusted value a log line shows. A
// request field may be 64 KiB, and the refusal burst limits lines, not
// bytes: 20 requests with a whole field each would add megabytes to dom0's
// log (C6).
const maxLoggedLen = 64

// Loggable is an untrusted value as a log line may show it: its first
// maxLoggedLen bytes, then its length if it is longer. It is not quoted
// here: it goes into an error message that the log quotes as a whole
// (slog), and quoting it twice would double its escapes.
func Loggable(untrusted string) string {
	if len(untrusted) <= maxLoggedLen {
		return untrusted
	}
	return fmt.Sprintf("%s…(%d bytes)", untrusted[:maxLoggedLen], len(untrusted))
}
