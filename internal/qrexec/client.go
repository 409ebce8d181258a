package qrexec

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Streams are the caller's ends of a call. Stdout and Stderr are closed at
// the remote EOF when they are io.Closers (a local program's stdin pipe must
// see EOF). A nil Stdin sends EOF at once; a nil Stderr discards.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// RefusedError is a call that did not run; Code is its exit code (125, 126
// or 127).
type RefusedError struct{ Code int }

func (e *RefusedError) Error() string {
	switch e.Code {
	case ExitRefused:
		return "call refused"
	case ExitNotFound:
		return "no such service in the target"
	}
	return "qrexec failure: the call did not start (the log of dom0 or of the target says why)"
}

// Start sends a request of type t on conn and waits for the answer. It
// returns a *RefusedError if the call will not run.
func Start(conn Conn, t MsgType, req Request) error {
	payload, err := req.Encode()
	if err != nil {
		return err
	}
	_, sendErr := conn.Write(appendMessage(append([]byte(nil), helloMessage...), t, payload))
	err = readAnswer(conn)
	if _, refused := errors.AsType[*RefusedError](err); sendErr != nil && !refused {
		// A peer that refused before reading the request (dom0 over the
		// call limit) closed: its answer said why, else the send did.
		return fmt.Errorf("qrexec: sending the request: %w", sendErr)
	}
	return err
}

// readAnswer reads the peer's hello and its answer to a request.
func readAnswer(conn Conn) error {
	if err := readHello(conn); err != nil {
		return fmt.Errorf("qrexec: %w", err)
	}
	var buf [4]byte
	answer, payload, err := ReadMessage(conn, buf[:])
	switch {
	case err != nil:
		return fmt.Errorf("qrexec: reading the answer: %w", err)
	case answer == MsgAccept:
		return nil
	case answer == MsgRefuse:
		return &RefusedError{Code: refusalCode(payload)}
	}
	return fmt.Errorf("qrexec: %w: answer of type %d", ErrProtocol, answer)
}

// refusalCode is the code of a refuse message; an unknown code counts as a
// qrexec failure.
func refusalCode(payload []byte) int {
	code := binary.LittleEndian.Uint32(payload)
	if code == ExitRefused || code == ExitNotFound {
		return int(code)
	}
	return ExitFailure
}

// Run carries the data phase of a started call and returns the remote exit
// status.
func Run(conn Conn, s Streams) (int, error) {
	out := newMessageWriter(conn)
	enlargePipe(s.Stdin)
	enlargePipe(s.Stdout)
	stdinFailed := make(chan error, 1) // why stdin could not be read
	go func() {
		if s.Stdin == nil {
			out.send(MsgStdin, nil)
			return
		}
		// A stdin that cannot be read ends the call as a caller that
		// left does: the service is ended, and this call's status is 125.
		if failed, ok := errors.AsType[*readError](out.pump(MsgStdin, s.Stdin)); ok {
			stdinFailed <- failed.Err
			conn.Close()
		}
	}()
	in := newDataReader(conn)
	defer in.close()
	// A local reader that went away loses the rest, as with a pipe.
	stdout, stderr := newSink(s.Stdout), newSink(s.Stderr)
	stdoutOpen, stderrOpen := true, true
	for {
		t, n, err := in.next()
		switch {
		case err != nil:
		case t == MsgExit:
			var status [4]byte
			if _, err = in.payload(t, n, status[:]); err == nil {
				in.flush() // the streams' EOFs came first, unless the peer skipped them
				if failed := cmp.Or(stdout.failed, stderr.failed); failed != nil {
					return ExitFailure, fmt.Errorf("qrexec: the call's output could not be written: %w", failed)
				}
				return exitStatus(status[:])
			}
		case t == MsgStdout && stdoutOpen:
			stdoutOpen, err = receive(in, t, n, stdout)
		case t == MsgStderr && stderrOpen:
			stderrOpen, err = receive(in, t, n, stderr)
		default:
			return ExitFailure, fmt.Errorf("qrexec: %w: message type %d during the call", ErrProtocol, t)
		}
		if err != nil {
			select {
			case failed := <-stdinFailed:
				return ExitFailure, fmt.Errorf("qrexec: the call's input could not be read, so the call was ended: %w", failed)
			default:
			}
			return ExitFailure, fmt.Errorf("qrexec: connection lost during the call: %w", err)
		}
	}
}

func exitStatus(payload []byte) (int, error) {
	status := binary.LittleEndian.Uint32(payload)
	if status > 255 {
		return ExitFailure, fmt.Errorf("qrexec: %w: exit status %d", ErrProtocol, status)
	}
	return int(status), nil
}

// receive delivers a data message's payload to s, or closes s at EOF (an
// empty payload); it returns whether the stream is still open.
func receive(in *dataReader, t MsgType, n int, s *sink) (bool, error) {
	if n == 0 {
		s.close()
		return false, nil
	}
	return true, in.deliver(t, n, s)
}
