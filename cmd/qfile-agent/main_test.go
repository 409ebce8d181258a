package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
