package lab

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// connectStdio gives a command what os/exec would: a reader's bytes on its
// stdin, its output in the caller's writers once wait returns, /dev/null
// for nil, and a dup of an *os.File, which the caller keeps open.
func TestConnectStdio(t *testing.T) {
	var stdout bytes.Buffer
	callerStderr, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer callerStderr.Close()
	files, wait, err := connectStdio(strings.NewReader("in\n"), &stdout, callerStderr)
	if err != nil {
		t.Fatal(err)
	}
	// What the command would do: echo its stdin to stdout, write stderr.
	in, err := io.ReadAll(files[0])
	if err == nil {
		_, err = files[1].Write(append([]byte("out:"), in...))
	}
	if err == nil {
		_, err = files[2].WriteString("err\n")
	}
	if err != nil {
		t.Fatal(err)
	}
	closeAll(files[:])
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "out:in\n" {
		t.Errorf("stdout %q, want %q", stdout.String(), "out:in\n")
	}
	if _, err := callerStderr.WriteString("still open\n"); err != nil {
		t.Errorf("the caller's stderr was closed: %v", err)
	}
	if got, _ := os.ReadFile(callerStderr.Name()); string(got) != "err\nstill open\n" {
		t.Errorf("stderr file %q", got)
	}

	files, wait, err = connectStdio(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		if f.Name() != os.DevNull {
			t.Errorf("stream %d of nil is %s, want %s", i, f.Name(), os.DevNull)
		}
	}
	closeAll(files[:])
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}
