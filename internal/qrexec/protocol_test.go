package qrexec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"pedos.dev/updates/internal/qrexec"
)

func message(t qrexec.MsgType, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(t))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func TestReadMessage(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		ok   bool
		buf  []byte // nil: MaxDataLen bytes
	}{
		{"hello", message(qrexec.MsgHello, []byte{1, 0, 0, 0}), true, nil},
		{"empty stdout is EOF", message(qrexec.MsgStdout, nil), true, nil},
		{"largest data", message(qrexec.MsgStdin, make([]byte, qrexec.MaxDataLen)), true, nil},
		{"data over the limit", message(qrexec.MsgStdin, make([]byte, qrexec.MaxDataLen+1)), false, nil},
		// The header's limit refuses them, not only the buffer's size.
		{"data over the limit, room in the buffer", message(qrexec.MsgStdin, make([]byte, qrexec.MaxDataLen+1)), false, make([]byte, qrexec.MaxDataLen+1)},
		{"largest request", message(qrexec.MsgCall, make([]byte, qrexec.MaxRequestLen)), true, make([]byte, qrexec.MaxRequestLen+1)},
		{"request over the limit", message(qrexec.MsgCall, make([]byte, qrexec.MaxRequestLen+1)), false, make([]byte, qrexec.MaxRequestLen+1)},
		{"short hello", message(qrexec.MsgHello, []byte{1}), false, nil},
		{"accept with payload", message(qrexec.MsgAccept, []byte{0}), false, nil},
		{"unknown type", message(99, nil), false, nil},
		{"type 0", message(0, nil), false, nil},
		{"truncated payload", message(qrexec.MsgStdout, []byte("abc"))[:10], false, nil},
		{"huge length, no payload", binary.LittleEndian.AppendUint32([]byte{8, 0, 0, 0}, 0xffffffff), false, nil},
		{"data where a hello is expected", message(qrexec.MsgStdin, make([]byte, 100)), false, make([]byte, 4)},
	} {
		buf := c.buf
		if buf == nil {
			buf = make([]byte, qrexec.MaxDataLen)
		}
		_, _, err := qrexec.ReadMessage(bytes.NewReader(c.in), buf)
		if (err == nil) != c.ok {
			t.Errorf("%s: got %v", c.name, err)
		}
		if err != nil && !c.ok && !errors.Is(err, qrexec.ErrProtocol) {
			t.Errorf("%s: %v is not ErrProtocol", c.name, err)
		}
	}
}

// TestDecodeRequest: names and arguments are checked before policy (C4),
// and each message type takes only its own fields.
func TestDecodeRequest(t *testing.T) {
	call := qrexec.Request{Target: "dom0", Service: "PedOS.ReceiveUpdates", Argument: "0123abcd"}
	for _, c := range []struct {
		name string
		t    qrexec.MsgType
		req  qrexec.Request
		ok   bool
	}{
		{"call", qrexec.MsgCall, call, true},
		{"call to @default", qrexec.MsgCall, qrexec.Request{Target: "@default", Service: "s"}, true},
		{"exec-service", qrexec.MsgExecService, qrexec.Request{Source: "vm1", Target: "vm2", Service: "s", User: "root"}, true},
		{"exec-command", qrexec.MsgExecCommand, qrexec.Request{User: "root", Command: "echo $HOME; ls | wc"}, true},
		{"shell metacharacters in service", qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: "a;rm -rf /"}, false},
		{"$ in service", qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: "$HOME"}, false},
		{"/ in argument", qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: "s", Argument: "../x"}, false},
		{"overlong service", qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: strings.Repeat("s", 65)}, false},
		{"overlong argument", qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: "s", Argument: strings.Repeat("a", 65)}, false},
		{"empty service", qrexec.MsgCall, qrexec.Request{Target: "dom0"}, false},
		{"service ..", qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: ".."}, false},
		{"empty target", qrexec.MsgCall, qrexec.Request{Service: "s"}, false},
		{"target @anyvm", qrexec.MsgCall, qrexec.Request{Target: "@anyvm", Service: "s"}, false},
		{"call claiming a source", qrexec.MsgCall, qrexec.Request{Source: "dom0", Target: "dom0", Service: "s"}, false},
		{"call carrying a command", qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: "s", Command: "id"}, false},
		{"exec-service with a command", qrexec.MsgExecService, qrexec.Request{Source: "vm1", Target: "vm2", Service: "s", Command: "id"}, false},
		{"exec-service without source", qrexec.MsgExecService, qrexec.Request{Target: "vm2", Service: "s"}, false},
		{"exec-command with NUL", qrexec.MsgExecCommand, qrexec.Request{Command: "a\x00b"}, false},
		{"exec-command with service", qrexec.MsgExecCommand, qrexec.Request{Service: "s", Command: "id"}, false},
		{"bad user", qrexec.MsgExecCommand, qrexec.Request{User: "a:b", Command: "id"}, false},
		{"not a request type", qrexec.MsgStdin, call, false},
	} {
		payload, err := c.req.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := qrexec.DecodeRequest(c.t, payload)
		if (err == nil) != c.ok || c.ok && got != c.req {
			t.Errorf("%s: got %+v, %v", c.name, got, err)
		}
		if !c.ok && !errors.Is(err, qrexec.ErrInvalidRequest) {
			t.Errorf("%s: %v is not ErrInvalidRequest", c.name, err)
		}
	}
	good, _ := call.Encode()
	for name, payload := range map[string][]byte{
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"empty":          nil,
		"length overrun": {0, 0, 0xff, 0xff},
	} {
		if _, err := qrexec.DecodeRequest(qrexec.MsgCall, payload); !errors.Is(err, qrexec.ErrProtocol) {
			t.Errorf("%s: got %v, want ErrProtocol", name, err)
		}
	}
	if _, err := (qrexec.Request{Command: strings.Repeat("x", qrexec.MaxRequestLen)}).Encode(); err == nil {
		t.Error("an oversized request was encoded")
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add(message(qrexec.MsgHello, []byte{1, 0, 0, 0}))
	f.Add(append(message(qrexec.MsgStdout, []byte("abc")), message(qrexec.MsgExit, []byte{3, 0, 0, 0})...))
	f.Add(message(qrexec.MsgRefuse, []byte{126, 0, 0, 0}))
	f.Add(message(qrexec.MsgStdin, make([]byte, 5)))
	// A full buffer, as for data, and a 4-byte one, as for a hello or an
	// answer: neither may be overrun, whatever the peer sends.
	bufs := [][]byte{make([]byte, qrexec.MaxDataLen), make([]byte, 4)}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, buf := range bufs {
			r := bytes.NewReader(data)
			for {
				typ, payload, err := qrexec.ReadMessage(r, buf)
				if err != nil {
					break
				}
				if len(payload) > len(buf) {
					t.Fatalf("type %d: payload of %d bytes", typ, len(payload))
				}
			}
		}
	})
}

// FuzzDecodeRequest: a request decodes to at most one meaning, and only to
// fields that pass the checks (non-malleable: re-encoding gives the input).
func FuzzDecodeRequest(f *testing.F) {
	for _, r := range []qrexec.Request{
		{Target: "dom0", Service: "PedOS.ReceiveUpdates", Argument: "0123abcd"},
		{Source: "vm1", Target: "@dispvm:t", Service: "s", User: "u"},
		{User: "root", Command: "id"},
	} {
		payload, _ := r.Encode()
		for _, t := range []qrexec.MsgType{qrexec.MsgCall, qrexec.MsgExecService, qrexec.MsgExecCommand} {
			f.Add(uint32(t), payload)
		}
	}
	f.Fuzz(func(t *testing.T, typ uint32, data []byte) {
		req, err := qrexec.DecodeRequest(qrexec.MsgType(typ), data)
		if err != nil {
			return
		}
		again, err := req.Encode()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v does not encode back to the input", req)
		}
		if strings.ContainsAny(req.Service+req.Argument+req.Target+req.Source+req.User, "/ ;$`\x00\n") {
			t.Fatalf("unchecked characters passed: %+v", req)
		}
	})
}
