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
			// The first progress line comes at once, with what the FILEs hold.
			if code != c.code || len(lines) < 3 || lines[0] != "qfile-agent: 1 of 2 files, 1000 bytes of 3000 bytes sent (33 %)" ||
				lines[len(lines)-2] != "qfile-agent: in total 2 files, 3000 bytes sent" || !strings.HasPrefix(lines[len(lines)-1], c.last) {
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

// What the FILEs hold is counted as the sender sends it: every entry of a
// directory, symlinks not followed, the bytes of regular files; a line
// without the totals where they are unknown or were passed.
func TestPlannedProgress(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]int{"a": 3 << 20, "d/b": 1000, "d/e/c": 0} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "d", "link")); err != nil {
		t.Fatal(err)
	}
	plan := plannedTotals([]string{filepath.Join(dir, "a"), filepath.Join(dir, "d")})
	if plan != (totals{files: 6, bytes: 3<<20 + 1000}) {
		t.Fatalf("planned %+v, want 6 files (a, d, d/b, d/e, d/e/c, d/link) of 3 MiB + 1000 bytes", plan)
	}
	for _, c := range []struct {
		files int
		bytes int64
		want  string
	}{
		{1, 3 << 20, "1 of 6 files, 3.0 MiB of 3.0 MiB sent (100 %)"},
		{0, 1 << 20, "0 of 6 files, 1.0 MiB of 3.0 MiB sent (33 %)"},
		{7, 3 << 20, "7 files, 3.0 MiB sent"},
	} {
		if got := plan.progress(c.files, c.bytes); got != c.want {
			t.Errorf("progress(%d, %d) = %q, want %q", c.files, c.bytes, got, c.want)
		}
	}
	if got := plannedTotals([]string{filepath.Join(dir, "missing")}).progress(1, 10); got != "1 files, 10 bytes sent" {
		t.Errorf("without totals: %q", got)
	}
	if got := (totals{files: 2}).progress(1, 0); got != "1 of 2 files, 0 bytes of 0 bytes sent (50 %)" {
		t.Errorf("files only: %q", got)
	}
}

// TestMissingPathSendsNothing: a FILE that is not there ends the agent before
// it sends a byte (not after the files before it, leaving the receiver a
// stream without its end), naming the path.
func TestMissingPathSendsNothing(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(present, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	stdout, stderr, code := testbin.Run(t, exec.Command(testbin.Path(t, "qfile-agent"), present, missing))
	if code != 1 || stdout != "" || !strings.Contains(stderr, missing) || !strings.Contains(stderr, "(nothing sent)") {
		t.Errorf("exit %d, %d bytes sent, stderr %q; want exit 1, nothing sent, the missing path named", code, len(stdout), stderr)
	}
}
