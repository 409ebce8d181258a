package updatevm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		client    string
		agentExit int
		wantCode  int // 0: no error
		wantText  string
	}{
		{readAll + "; exit 0", 0, 0, ""},
		{readAll + "; exit 1", 0, 0, ""},
		{"exit 126", 1, ExitRefused, "qrexec policy or its receive service refused the call"},
		{"exit 125", 1, ExitQrexecFailure, "could not reach dom0"},
		{readAll + "; exit 0", 1, 1, "sending to dom0 failed (qfile-agent exit 1)"},
	} {
		dir := t.TempDir()
		client := filepath.Join(dir, "qrexec-client-vm")
		agent := filepath.Join(dir, "qfile-agent")
		if err := os.WriteFile(client, []byte("#!/bin/sh\necho client >&2\n"+tc.client+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf("#!/bin/sh\necho agent >&2\nhead -c 4194304 /dev/zero\nexec >&-\nread status\nexit %d\n", tc.agentExit)
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
			t.Errorf("%q, agent %d: %v", tc.client, tc.agentExit, err)
		case tc.wantCode == 0:
			if _, err := os.Stat(u.packagesDir()); !os.IsNotExist(err) {
				t.Errorf("%q: the sent packages were not removed: %v", tc.client, err)
			}
		case !errors.As(err, &send) || send.Code != tc.wantCode || !strings.Contains(err.Error(), tc.wantText):
			t.Errorf("%q, agent %d: %v, want a SendError with code %d saying %q", tc.client, tc.agentExit, err, tc.wantCode, tc.wantText)
		}
	}
}
