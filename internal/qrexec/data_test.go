package qrexec_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"

	"pedos.dev/updates/internal/qrexec"
)

// TestRunDataPaths feeds the caller's side of the data phase hand-made
// messages over a Unix socket, with the output going to a pipe (spliced)
// and to a buffer (copied): both give the same bytes and status, and a
// payload cut short is a protocol violation on both.
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
			return w, func() []byte { w.Close(); return <-got }
		},
		"copied into a buffer": func(t *testing.T) (io.Writer, func() []byte) {
			var b bytes.Buffer
			return &b, b.Bytes
		},
	}
	for name, output := range outputs {
		t.Run(name, func(t *testing.T) {
			w, got := output(t)
			status, err := qrexec.Run(peer(t, whole), qrexec.Streams{Stdout: w})
			if err != nil || status != 7 {
				t.Fatalf("status %d, %v", status, err)
			}
			if !bytes.Equal(got(), append(payload, "tail"...)) {
				t.Error("stdout differs from what the peer sent")
			}

			w, got = output(t)
			_, err = qrexec.Run(peer(t, cut), qrexec.Streams{Stdout: w})
			if !errors.Is(err, qrexec.ErrProtocol) {
				t.Errorf("truncated payload: got %v, want ErrProtocol", err)
			}
			got()
		})
	}
}

// peer returns our end of a Unix socket pair whose other end sends data,
// then closes; what we send is discarded.
func peer(t *testing.T, data []byte) qrexec.Conn {
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
	t.Cleanup(func() { conns[0].Close() })
	go func() {
		defer conns[1].Close()
		go io.Copy(io.Discard, conns[1])
		conns[1].Write(data)
	}()
	return conns[0].(*net.UnixConn)
}
