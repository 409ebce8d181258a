package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"pedos.dev/updates/internal/qfile"
	"pedos.dev/updates/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// TestProgressTotals: --progress ends with the transfer's totals, also when it fails, even
// when the whole transfer takes less than the 200 ms between progress lines.
func TestProgressTotals(t *testing.T) {
	src := t.TempDir()
	files := []string{filepath.Join(src, "a"), filepath.Join(src, "b")}
	for i, f := range files {
		if err := os.WriteFile(f, bytes.Repeat([]byte("x"), 1000*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name     string
		maxFiles uint64
		code     int
		last     string
	}{
		{"received", 10, 0, "qfile-agent: done, the receiver confirmed every byte"},
		{"refused", 1, 1, "qfile-agent: the receiver refused the transfer: EDQUOT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, err := os.OpenRoot(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			stderr, code := sendTo(t, &qfile.Receiver{Root: root, Limits: qfile.Limits{MaxBytes: 1 << 20, MaxFiles: c.maxFiles}, NoSync: true}, files)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != c.code || len(lines) < 2 || lines[len(lines)-2] != "qfile-agent: in total 2 files, 3000 bytes sent" ||
				!strings.HasPrefix(lines[len(lines)-1], c.last) {
				t.Errorf("exit %d, stderr:\n%s", code, stderr)
			}
		})
	}
}

// sendTo runs qfile-agent --progress on paths into rc and returns its stderr and exit status.
func sendTo(t *testing.T, rc *qfile.Receiver, paths []string) (string, int) {
	t.Helper()
	cmd := exec.Command(testbin.Path(t, "qfile-agent"), append([]string{"--progress"}, paths...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stream, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	status, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st, _ := rc.Receive(stream)
	if _, err := status.Write(st.Append(nil)); err != nil {
		t.Error(err)
	}
	status.Close()
	err = cmd.Wait()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		return stderr.String(), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return stderr.String(), 0
}

// A receiver that refuses a file stops reading in the middle of its payload: the agent must
// get EPIPE and report the receiver's status, not die silently of SIGPIPE (Go's death for a
// broken stdout unless the signal is ignored) before it has read that status (docs/qfile.md
// "Status"). The stream is a socket, so that the payload is written, never spliced, and the
// agent looks for a status only after the file: the failed write comes first.
func TestRefusalMidPayloadIsReported(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big.rpm")
	if err := os.WriteFile(src, make([]byte, 8<<20), 0o644); err != nil { // more than the socket holds
		t.Fatal(err)
	}
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	stream, agentOut := os.NewFile(uintptr(fds[0]), "stream"), os.NewFile(uintptr(fds[1]), "agent stdout")
	defer stream.Close()
	cmd := exec.Command(testbin.Path(t, "qfile-agent"), src)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = agentOut, &stderr
	status, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Start()
	agentOut.Close()
	if err != nil {
		t.Fatal(err)
	}
	rc := &qfile.Receiver{Root: root, Limits: qfile.Limits{MaxBytes: 1 << 10, MaxFiles: 10}, NoSync: true}
	st, _ := rc.Receive(stream) // refuses at the header: EDQUOT
	stream.Close()              // the rest of the payload now meets a closed socket
	if _, err := status.Write(st.Append(nil)); err != nil {
		t.Error(err)
	}
	status.Close()
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "qfile-agent: the receiver refused the transfer: EDQUOT") {
		t.Errorf("exit %d (%v), stderr %q: want exit 1 with the receiver's EDQUOT", code, err, stderr.String())
	}
}
