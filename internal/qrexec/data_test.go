package qrexec_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"

	"pedos.dev/updates/internal/qrexec"
)

// TestRunDataPaths feeds the caller's side of the data phase hand-made
// messages over a Unix socket, at once and in 5-byte pieces (headers and
// payloads then arrive split across reads), with the output going to a
// pipe (spliced) and to a buffer (copied): all give the same bytes and
// status, and a payload cut short is a protocol violation on all.
func TestRunDataPaths(t *testing.T) {
	payload := make([]byte, qrexec.MaxDataLen)
	rand.NewChaCha8([32]byte{2}).Read(payload)
	var whole []byte
	whole = append(whole, message(qrexec.MsgStdout, payload)...)
	whole = append(whole, message(qrexec.MsgStdout, []byte("tail"))...)
	whole = append(whole, message(qrexec.MsgStdout, nil)...)
	whole = append(whole, message(qrexec.MsgExit, []byte{7, 0, 0, 0})...)
	cut := append(message(qrexec.MsgStdout, payload)[:1000], 0) // then the peer closes

	outputs := map[string]func(t *testing.T) (io.Writer, func() []byte){
		"spliced into a pipe": func(t *testing.T) (io.Writer, func() []byte) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan []byte)
			go func() {
				data, _ := io.ReadAll(r)
				r.Close()
				got <- data
			}()
			return w, func() []byte { w.Close(); return qrexec.Await(t, "the bytes the pipe's reader got", got) }
		},
		"copied into a buffer": func(t *testing.T) (io.Writer, func() []byte) {
			var b bytes.Buffer
			return &b, b.Bytes
		},
	}
	for name, output := range outputs {
		for _, piece := range []int{len(whole), 5} {
			t.Run(fmt.Sprintf("%s, sent in pieces of %d bytes", name, piece), func(t *testing.T) {
				w, got := output(t)
				status, err := qrexec.Run(peer(t, whole, piece), qrexec.Streams{Stdout: w})
				if err != nil || status != 7 {
					t.Fatalf("status %d, %v", status, err)
				}
				if !bytes.Equal(got(), append(payload, "tail"...)) {
					t.Error("stdout differs from what the peer sent")
				}

				w, got = output(t)
				_, err = qrexec.Run(peer(t, cut, piece), qrexec.Streams{Stdout: w})
				if !errors.Is(err, qrexec.ErrProtocol) {
					t.Errorf("truncated payload: got %v, want ErrProtocol", err)
				}
				got()
			})
		}
	}
}

// TestRunFramesStdin gives the caller's side a stdin that arrives in 3-byte
// pieces from a Unix socket, so the kernel holds it in many small buffers,
// and checks, as a peer, the messages it is sent: stdin messages of at most
// MaxDataLen bytes that add up to the input, then the empty one.
func TestRunFramesStdin(t *testing.T) {
	input := make([]byte, 150<<10)
	rand.NewChaCha8([32]byte{3}).Read(input)
	stdin, writer := socketPair(t)
	go func() {
		defer writer.Close()
		for rest := input; len(rest) > 0; rest = rest[min(3, len(rest)):] {
			if _, err := writer.Write(rest[:min(3, len(rest))]); err != nil {
				return
			}
		}
	}()
	conn, far := socketPair(t)
	received := make(chan []byte, 1)
	go func() {
		defer far.Close()
		var got []byte
		buf := make([]byte, qrexec.MaxDataLen)
		for {
			typ, payload, err := qrexec.ReadMessage(far, buf)
			if err != nil || typ != qrexec.MsgStdin {
				t.Errorf("message type %d, %v", typ, err)
				break
			}
			if len(payload) == 0 {
				break
			}
			got = append(got, payload...)
		}
		received <- got
		far.Write(append(message(qrexec.MsgStdout, nil), message(qrexec.MsgExit, []byte{0, 0, 0, 0})...))
	}()
	if status, err := qrexec.Run(conn, qrexec.Streams{Stdin: stdin}); err != nil || status != 0 {
		t.Fatalf("status %d, %v", status, err)
	}
	if !bytes.Equal(qrexec.Await(t, "the stdin messages the peer received", received), input) {
		t.Error("the stdin messages differ from the input")
	}
}

// peer returns our end of a Unix socket pair whose other end sends data in
// pieces of the given size, then closes; what we send is discarded.
func peer(t *testing.T, data []byte, piece int) qrexec.Conn {
	conn, far := socketPair(t)
	go func() {
		defer far.Close()
		go io.Copy(io.Discard, far)
		for rest := data; len(rest) > 0; rest = rest[min(piece, len(rest)):] {
			if _, err := far.Write(rest[:min(piece, len(rest))]); err != nil {
				return
			}
		}
	}()
	return conn
}

// socketPair returns the two ends of a Unix stream socket pair; the first
// is bounded (process_test.go).
func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return bounded(t, conns[0].(*net.UnixConn)), conns[1].(*net.UnixConn)
}
