package qrexec

import (
	"log/slog"
	"net"
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
