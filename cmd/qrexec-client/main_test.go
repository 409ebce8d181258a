package main

import (
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// A call that reaches no agent fails with 125 and says why on stderr, or,
// with --errors-fd, on that descriptor alone: stderr then carries only the
// domain's output, which pedos-dom0-update marks as the domain's.
func TestOwnErrorsOnTheirOwnDescriptor(t *testing.T) {
	bin := testbin.Path(t, "qrexec-client")
	sockets := t.TempDir() // no agent in it
	args := []string{"--sockdir", sockets, "--domains", "/nonexistent", "-d", "sys-test", "root:true"}

	_, stderr, code := testbin.Run(t, exec.Command(bin, args...))
	if code != 125 || !strings.HasPrefix(stderr, "qrexec-client: ") || !strings.Contains(stderr, "sys-test") {
		t.Errorf("without --errors-fd: exit %d, stderr %q; want 125 and the reason on stderr", code, stderr)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(bin, append([]string{"--errors-fd", "3"}, args...)...)
	cmd.ExtraFiles = []*os.File{w}
	_, stderr, code = testbin.Run(t, cmd)
	w.Close()
	own, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if code != 125 || stderr != "" || !strings.HasPrefix(string(own), "qrexec-client: ") || !strings.Contains(string(own), "sys-test") {
		t.Errorf("with --errors-fd 3: exit %d, stderr %q, descriptor 3 %q; want 125, nothing on stderr and the reason on 3", code, stderr, own)
	}
}

// A descriptor not open for writing, or not open at all, leaves the reason on
// stderr: it is not lost.
func TestOwnErrorsOnStderrWithoutAWritableDescriptor(t *testing.T) {
	bin := testbin.Path(t, "qrexec-client")
	args := []string{"--sockdir", t.TempDir(), "--domains", "/nonexistent", "-d", "sys-test", "root:true"}
	readOnly, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer readOnly.Close()
	for _, c := range []struct {
		name  string
		fd    string
		extra []*os.File
	}{
		{"read-only", "3", []*os.File{readOnly}},
		{"not open", "9", nil},
	} {
		cmd := exec.Command(bin, append([]string{"--errors-fd", c.fd}, args...)...)
		cmd.ExtraFiles = c.extra
		_, stderr, code := testbin.Run(t, cmd)
		if code != 125 || !strings.HasPrefix(stderr, "qrexec-client: ") || !strings.Contains(stderr, "sys-test") {
			t.Errorf("%s --errors-fd %s: exit %d, stderr %q; want 125 and the reason on stderr", c.name, c.fd, code, stderr)
		}
	}
}
