package qrexec

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A command call the agent refuses ends with the agent's exit code: 126
// for a request it calls invalid, not the 125 of a call that failed
// (overview.md: "125/126 qrexec failure / call refused, passed through").
func TestCommandPassesTheAgentsRefusalThrough(t *testing.T) {
	sockDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(sockDir, "vm7"), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(sockDir, "vm7", "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, _, err := readRequest(conn, MsgExecCommand); err == nil {
			refuse(conn, ExitRefused) // as logBadRequest answers an invalid request
		}
	}()
	type outcome struct {
		code int
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		code, err := CommandCall{DomainsFile: filepath.Join(sockDir, "no-domains.conf"), SockDir: sockDir, Domain: "vm7",
			User: "DEFAULT", Command: "true", AnswerTimeout: 5 * time.Second}.Run(Streams{})
		done <- outcome{code, err}
	}()
	got := Await(t, "the call's end", done)
	if refused, ok := errors.AsType[*RefusedError](got.err); got.code != ExitRefused || !ok || refused.Code != ExitRefused {
		t.Errorf("exit %d, %v; want %d, the agent's refusal", got.code, got.err, ExitRefused)
	}
}
