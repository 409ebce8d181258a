package updatevm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Send passes qrexec-client-vm's status on: a refusal by dom0's policy is
// not a failed download (overview.md, exit codes).
func TestSendExitStatus(t *testing.T) {
	for _, tc := range []struct {
		exit     int
		wantCode int // 0: no error
		wantText string
	}{
		{0, 0, ""},
		{126, ExitRefused, "qrexec policy or its receive service refused the call"},
		{125, ExitQrexecFailure, "could not reach dom0"},
		{1, 1, "sending to dom0 failed"},
	} {
		dir := t.TempDir()
		client := filepath.Join(dir, "qrexec-client-vm")
		if err := os.WriteFile(client, fmt.Appendf(nil, "#!/bin/sh\nexit %d\n", tc.exit), 0o755); err != nil {
			t.Fatal(err)
		}
		u := &UpdateVM{InstallRoot: dir, Log: io.Discard}
		if err := os.MkdirAll(u.packagesDir(), 0o755); err != nil {
			t.Fatal(err)
		}
		err := u.Send(t.Context(), Sender{QrexecClientVM: client, QfileAgent: "qfile-agent"}, strings.Repeat("a", 32), nil)
		var send *SendError
		switch {
		case tc.wantCode == 0 && err != nil:
			t.Errorf("exit %d: %v", tc.exit, err)
		case tc.wantCode == 0:
			if _, err := os.Stat(u.packagesDir()); !os.IsNotExist(err) {
				t.Errorf("exit 0: the sent packages were not removed: %v", err)
			}
		case !errors.As(err, &send) || send.Code != tc.wantCode || !strings.Contains(err.Error(), tc.wantText):
			t.Errorf("exit %d: %v, want a SendError with code %d saying %q", tc.exit, err, tc.wantCode, tc.wantText)
		}
	}
}
