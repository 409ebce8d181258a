package updatevm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Send passes qrexec-client-vm's 125 and 126 on, its own or the service's:
// a refusal by dom0 is not a failed download (overview.md, exit codes).
// qfile-agent's failure is the send's otherwise; a service that read the
// delivery and then failed is dom0's result to report.
func TestSendExitStatus(t *testing.T) {
	// The client either reads the whole stream and answers, or (a
	// refusal) leaves at once: the agent's 4 MiB must then end in a broken
	// pipe, not block on a pipe someone else still holds open.
	const readAll = "cat >/dev/null; echo status"
	for _, tc := range []struct {
		client   string
		agentEnd string // the agent's last command
		wantCode int    // 0: no error
		wantText string
	}{
		{readAll + "; exit 0", "exit 0", 0, ""},
		{readAll + "; exit 1", "exit 0", 0, ""},
		{"exit 126", "exit 1", ExitRefused, "qrexec policy or its receive service refused the call"},
		{"exit 125", "exit 1", ExitQrexecFailure, "could not reach dom0"},
		{"exit 127", "exit 1", ExitNoService, "dom0 has no PedOS.ReceiveUpdates service"},
		{readAll + "; exit 0", "exit 1", 1, "sending to dom0 failed (qfile-agent exit 1)"},
		// A signal is the shell's 128+N, not exec's -1.
		{readAll + "; exit 0", "kill -KILL $$", 137, "sending to dom0 failed (qfile-agent exit 137)"},
	} {
		dir := t.TempDir()
		client := filepath.Join(dir, "qrexec-client-vm")
		agent := filepath.Join(dir, "qfile-agent")
		if err := os.WriteFile(client, []byte("#!/bin/sh\necho client >&2\n"+tc.client+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf("#!/bin/sh\necho agent >&2\nhead -c 4194304 /dev/zero\nexec >&-\nread status\n%s\n", tc.agentEnd)
		if err := os.WriteFile(agent, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		// A log that is no file: exec copies both programs' stderr into it
		// from two goroutines.
		var log bytes.Buffer
		u := &UpdateVM{InstallRoot: dir, Log: &log}
		if err := os.MkdirAll(u.packagesDir(), 0o755); err != nil {
			t.Fatal(err)
		}
		err := u.Send(t.Context(), Sender{QrexecClientVM: client, QfileAgent: agent}, strings.Repeat("a", 32), nil)
		if !strings.Contains(log.String(), "agent\n") || !strings.Contains(log.String(), "client\n") {
			t.Errorf("%q: the log has %q, want both programs' stderr", tc.client, log.String())
		}
		var send *SendError
		switch {
		case tc.wantCode == 0 && err != nil:
			t.Errorf("%q, agent %q: %v", tc.client, tc.agentEnd, err)
		case tc.wantCode == 0:
			if _, err := os.Stat(u.packagesDir()); !os.IsNotExist(err) {
				t.Errorf("%q: the sent packages were not removed: %v", tc.client, err)
			}
		case !errors.As(err, &send) || send.Code != tc.wantCode || !strings.Contains(err.Error(), tc.wantText):
			t.Errorf("%q, agent %q: %v, want a SendError with code %d saying %q", tc.client, tc.agentEnd, err, tc.wantCode, tc.wantText)
		}
	}
}

// writeScript writes an executable shell script.
func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// The send's other outcomes: qfile-agent gets --progress and the files; a
// qrexec-client-vm killed by a signal is a failed send that keeps the
// packages (no status of dom0's came back); a deadline is the context's
// error; a qfile-agent that cannot start leaves no qrexec-client-vm running
// on its own, to call dom0 with an empty stream (were it waited for instead
// of killed, its marker would be there when Send returns).
func TestSendOutcomes(t *testing.T) {
	const agentOK = `echo "$@" >"$(dirname "$0")/agent-args"; exec >&-; read status; exit 0`
	for _, tc := range []struct {
		name, client, agent string
		timeout             time.Duration
		want                string // "" for success
	}{
		{"progress", "cat >/dev/null; echo status", agentOK, 0, ""},
		{"client-killed", "cat >/dev/null; echo status; kill -KILL $$", agentOK, 0, "sending to dom0: signal: killed"},
		{"deadline", "exec sleep 30", agentOK, 300 * time.Millisecond, "sending to dom0: context deadline exceeded"},
		{"no-agent", `sleep 1; touch "$(dirname "$0")/client-ran"`, "", 0, "sending to dom0: fork/exec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			client, agent := filepath.Join(dir, "qrexec-client-vm"), filepath.Join(dir, "qfile-agent")
			writeScript(t, client, tc.client)
			if tc.agent != "" {
				writeScript(t, agent, tc.agent)
			}
			u := &UpdateVM{InstallRoot: dir, Log: io.Discard}
			if err := os.MkdirAll(u.packagesDir(), 0o755); err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			err := u.Send(ctx, Sender{QrexecClientVM: client, QfileAgent: agent, Progress: true}, strings.Repeat("a", 32), []string{"/p/a.rpm", "/p/b.rpm"})
			if tc.want == "" {
				args, rerr := os.ReadFile(filepath.Join(dir, "agent-args"))
				if err != nil || rerr != nil || string(args) != "--progress /p/a.rpm /p/b.rpm\n" {
					t.Errorf("Send: %v; qfile-agent's arguments %q (%v)", err, args, rerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Send: %v, want an error saying %q", err, tc.want)
			}
			if _, err := os.Stat(u.packagesDir()); err != nil {
				t.Errorf("the packages of a failed send were removed: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "client-ran")); err == nil {
				t.Error("qrexec-client-vm ran on without qfile-agent")
			}
		})
	}
}
