package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
)

// writeClient writes a stand-in for qrexec-client: a shell script.
func writeClient(t *testing.T, script string) string {
	t.Helper()
	client := filepath.Join(t.TempDir(), "qrexec-client")
	if err := os.WriteFile(client, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return client
}

// Each argument reaches the UpdateVM's shell as one single-quoted word,
// a quote in it included: the command line is never a shell's to split.
func TestQrexecCallerQuotesEachWord(t *testing.T) {
	client := writeClient(t, `printf '%s\n' "$@"`+"\n")
	var out strings.Builder
	code, err := QrexecCaller{Client: client, Timeout: time.Minute}.Run(t.Context(), "sys-firewall",
		[]string{"pedos-download-dom0-updates", "a b", "it's", "$(id)"}, nil, &out, io.Discard)
	want := "-d\nsys-firewall\nroot:'pedos-download-dom0-updates' 'a b' 'it'\\''s' '$(id)'\n"
	if code != 0 || err != nil || out.String() != want {
		t.Errorf("exit %d, %v; the client got\n%s\nwant\n%s", code, err, out.String(), want)
	}
}

// Ctrl-C while the UpdateVM works ends the call, and the message says so:
// not an UpdateVM failure "exit -1".
func TestInterruptedCall(t *testing.T) {
	client := writeClient(t, "exec sleep 60\n")
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	code, err := QrexecCaller{Client: client, Timeout: time.Minute}.Run(ctx, "sys-firewall", []string{"true"}, nil, io.Discard, io.Discard)
	if code != ExitFailure || !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "sys-firewall") {
		t.Errorf("interrupted call: exit %d, %v; want %d and an error saying it was interrupted", code, err, ExitFailure)
	}
}

// dom0's own qrexec-client killed (its OOM killer, a person) is dom0's
// qrexec failure, not the UpdateVM's "killed by signal" (ours passes a
// remote kill on as an exit status); the terminal's Ctrl-C reaching it
// first is an interruption.
func TestQrexecClientKilled(t *testing.T) {
	for _, c := range []struct {
		script string
		code   int
		want   string
	}{
		{"kill -KILL $$\n", ExitQrexecFailure, "dom0's qrexec-client was killed by signal 9 (killed) during the call to sys-firewall"},
		{"kill -INT $$\n", ExitFailure, "interrupted"},
		{"exit 137\n", 137, ""},
	} {
		code, err := QrexecCaller{Client: writeClient(t, c.script), Timeout: time.Minute}.Run(t.Context(), "sys-firewall", []string{"true"}, nil, io.Discard, io.Discard)
		if code != c.code || (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("client %q: exit %d, %v; want %d and %q", c.script, code, err, c.code, c.want)
		}
	}
}

// This project's qrexec-client says what failed in the call itself on a
// descriptor of its own: Run returns it as dom0's error, and the domain's
// stderr holds only the domain's lines (they had been marked as one).
func TestQrexecCallerOwnErrors(t *testing.T) {
	client := writeClient(t, `[ "$1" = --errors-fd ] && [ "$2" = 3 ] || exit 2
echo "a line of the domain's" >&2
echo "qrexec-client: qrexec: cannot reach the agent of sys-firewall" >&3
exit 125
`)
	var stderr strings.Builder
	code, err := QrexecCaller{Client: client, Timeout: time.Minute, OwnErrors: true}.Run(t.Context(), "sys-firewall", []string{"true"}, nil, io.Discard, &stderr)
	if code != ExitQrexecFailure || !errors.Is(err, ErrCallFailed) || !strings.HasSuffix(err.Error(), ": qrexec-client: qrexec: cannot reach the agent of sys-firewall") || stderr.String() != "a line of the domain's\n" {
		t.Errorf("exit %d, %v, stderr %q; want 125, the client's error, and only the domain's line on stderr", code, err, stderr.String())
	}
	// A call that went through has no error of the client's.
	client = writeClient(t, "exit 7\n")
	if code, err := (QrexecCaller{Client: client, Timeout: time.Minute, OwnErrors: true}).Run(t.Context(), "sys-firewall", []string{"true"}, nil, io.Discard, io.Discard); code != 7 || err != nil {
		t.Errorf("a command's own exit: %d, %v; want 7 and no error", code, err)
	}
}

// killOnCleanup kills, when the test ends, the process whose pid a stand-in
// wrote to pidFile (one the client started and left running).
func killOnCleanup(t *testing.T, pidFile string) {
	t.Cleanup(func() {
		if pid, err := os.ReadFile(pidFile); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
	})
}

// A call through an agent=exec: transport whose command hangs ends at
// dom0's deadline, plus outputWait: the command the client started, which
// outlives it, holds neither the errors' descriptor (qrexec-client makes it
// close-on-exec) nor, past outputWait, the call's output (a review saw
// the run wait for the command to end).
func TestQrexecCallerDeadlineWithAnExecTransport(t *testing.T) {
	defer func(wait time.Duration) { outputWait = wait }(outputWait)
	outputWait = time.Second
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "transport.pid")
	domains := filepath.Join(dir, "domains.conf")
	if err := os.WriteFile(domains, []byte("sys-firewall agent=exec:echo $$ >"+pidFile+"; exec sleep 30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	client := writeClient(t, "exec "+testbin.Path(t, "qrexec-client")+" --domains "+domains+` "$@"`+"\n")
	killOnCleanup(t, pidFile)
	start := time.Now()
	var stderr strings.Builder
	code, err := QrexecCaller{Client: client, Timeout: time.Second, OwnErrors: true}.Run(t.Context(), "sys-firewall", []string{"true"}, nil, io.Discard, &stderr)
	if took := time.Since(start); code != ExitQrexecFailure || !errors.Is(err, ErrCallDeadline) || took > time.Second+3*outputWait {
		t.Errorf("exit %d, %v after %v; want 125 at dom0's deadline, within %v", code, err, took.Round(time.Millisecond), time.Second+3*outputWait)
	}
}

// A client that exits 0 while something it started still holds its
// stderr has succeeded: the call ends outputWait later, not as a failure.
func TestQrexecCallerOutputHeldAfterSuccess(t *testing.T) {
	defer func(wait time.Duration) { outputWait = wait }(outputWait)
	outputWait = 500 * time.Millisecond
	pidFile := filepath.Join(t.TempDir(), "holder.pid")
	client := writeClient(t, "sleep 30 >&2 &\necho $! >"+pidFile+"\nexit 0\n")
	killOnCleanup(t, pidFile)
	var stderr strings.Builder
	start := time.Now()
	code, err := QrexecCaller{Client: client, Timeout: time.Minute}.Run(t.Context(), "sys-firewall", []string{"true"}, nil, io.Discard, &stderr)
	if took := time.Since(start); code != 0 || err != nil || took > 10*outputWait {
		t.Errorf("exit %d, %v after %v; want 0 and no error within %v", code, err, took.Round(time.Millisecond), 10*outputWait)
	}
}

// A call that outlives dom0's deadline is ended and reported as a qrexec
// failure, 125 (C7): not as the UpdateVM's own exit.
func TestQrexecCallerDeadline(t *testing.T) {
	client := writeClient(t, "exec sleep 60\n")
	code, err := QrexecCaller{Client: client, Timeout: 200 * time.Millisecond}.Run(context.Background(), "sys-firewall", []string{"true"}, nil, io.Discard, io.Discard)
	if code != ExitQrexecFailure || err == nil || !strings.Contains(err.Error(), "sys-firewall did not answer before dom0's deadline (200ms)") {
		t.Errorf("a call past its deadline: exit %d, %v; want %d and a message naming the deadline", code, err, ExitQrexecFailure)
	}
}

// A call that could not be made at all (qrexec-client failed to start,
// or failed without an exit status) is a qrexec failure: 125.
func TestVMOutcomeOfAFailedCall(t *testing.T) {
	r := &runner{env: Env{Config: dom0.Config{UpdateVM: "sys-firewall"}}}
	code, err := r.vmOutcome(0, errors.New("fork/exec qrexec-client: no such file or directory"), "the check")
	if code != ExitQrexecFailure || err == nil || !strings.Contains(err.Error(), "the check in sys-firewall: fork/exec") {
		t.Errorf("exit %d, %v; want %d naming the call", code, err, ExitQrexecFailure)
	}
	// dom0's own client telling why: its 125 stays 125, a refusal by the
	// domain's agent stays 126 (overview.md: passed through).
	for _, want := range []int{ExitQrexecFailure, ExitRefused} {
		own := fmt.Errorf("%w: qrexec-client: sys-firewall: call refused", ErrCallFailed)
		if code, err := r.vmOutcome(want, own, "the check"); code != want || !errors.Is(err, ErrCallFailed) {
			t.Errorf("the client's own error with exit %d: exit %d, %v", want, code, err)
		}
	}
}

// updates.conf's qrexec_client that cannot be run is found before anything
// starts, and the message names the setting.
func TestCheckQrexecClient(t *testing.T) {
	dir := t.TempDir()
	notExecutable := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExecutable, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		client, want string // want "": no error
	}{
		{"/nonexistent", "/etc/pedos/updates.conf: qrexec_client /nonexistent cannot be run: stat /nonexistent: no such file or directory; nothing was sent"},
		{dir, "/etc/pedos/updates.conf: qrexec_client " + dir + " cannot be run: is a directory; nothing was sent"},
		{notExecutable, "/etc/pedos/updates.conf: qrexec_client " + notExecutable + " cannot be run: permission denied (not an executable file); nothing was sent"},
		{writeClient(t, ""), ""},
		{"", ""}, // not set: ours, found at the call
	} {
		err := CheckQrexecClient(dom0.Config{QrexecClient: c.client})
		if c.want == "" && err != nil || c.want != "" && (err == nil || err.Error() != c.want) {
			t.Errorf("%q: %v, want %q", c.client, err, c.want)
		}
	}
}
