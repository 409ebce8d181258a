package qrexec

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRefusalOverTheLimitHasADeadline: the refusal written to a connection
// over the call limit waits at most the request timeout for a peer that
// reads nothing (a vsock peer advertising no room: a synchronous net.Pipe
// here), so it cannot hold a goroutine and a descriptor for ever (C6).
func TestRefusalOverTheLimitHasADeadline(t *testing.T) {
	d := &Daemon{MaxCalls: 1, RequestTimeout: 50 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
	d.acquire("vm1")
	conn, peer := net.Pipe()
	defer peer.Close()
	served := make(chan struct{})
	go func() {
		d.ServeCall(conn, "vm1")
		close(served)
	}()
	select {
	case <-served:
	case <-time.After(30 * time.Second):
		t.Fatal("the refusal over the limit still waits for a peer that reads nothing")
	}
}

// A socket directory that group or others may write: a domain's directory there could be
// replaced between the check and the bind, so none is served (C1).
func TestWritableSocketDirRefused(t *testing.T) {
	sockDir := t.TempDir()
	vm1 := filepath.Join(sockDir, "vm1")
	if err := os.Mkdir(vm1, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkDomainDir(vm1); err != nil {
		t.Fatalf("a private directory in a private parent: %v", err)
	}
	if err := os.Chmod(sockDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := checkDomainDir(vm1); err == nil || !strings.Contains(err.Error(), "so others than dom0 may replace the domain's directory: chmod go-w "+sockDir) {
		t.Errorf("a parent others may write: %v", err)
	}
}
