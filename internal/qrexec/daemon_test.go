package qrexec

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/qrexec/policy"
	"pedos.dev/updates/internal/testbin"
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
	Await(t, "the end of the refusal over the limit, to a peer that reads nothing", served)
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

// A message of another type where the hello belongs is refused, even with
// the payload a hello would have (an exit status of 1).
func TestReadHelloTakesOnlyAHello(t *testing.T) {
	if err := readHello(bytes.NewReader(helloMessage)); err != nil {
		t.Fatalf("a hello: %v", err)
	}
	for _, t2 := range []MsgType{MsgExit, MsgRefuse} {
		if err := readHello(bytes.NewReader(appendMessage(nil, t2, uint32Payload(ProtocolVersion)))); !errors.Is(err, ErrProtocol) {
			t.Errorf("message type %d as the hello: %v, want ErrProtocol", t2, err)
		}
	}
}

// A target's agent that takes a relayed call and never answers cannot hold
// the caller's call, and its slot, beyond the request timeout: the caller
// gets a qrexec failure (C6).
func TestRelayToASilentTargetHasADeadline(t *testing.T) {
	dir := t.TempDir()
	agent := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", agent)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // reads what it is sent, never answers
		if c, err := l.Accept(); err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	domains, err := policy.ParseDomains("domains.conf", []byte("vm2 agent="+agent+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Domains: domains, SockDir: dir, MaxCalls: 1, RequestTimeout: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
	conn, caller := net.Pipe()
	defer caller.Close()
	go func() {
		defer conn.Close()
		// As serve leaves it: the caller's request deadline, which runs
		// out with the agent's; the refusal must still reach the caller.
		conn.SetDeadline(time.Now().Add(d.RequestTimeout))
		d.relay(conn, "vm2", Request{Source: "vm1", Target: "vm2", Service: "test.Echo"}, d.Log)
	}()
	caller.SetDeadline(WaitDeadline(t))
	if code, err := readUint32Message(caller, MsgRefuse); err != nil || code != ExitFailure {
		t.Errorf("the caller of a silent target got %d, %v; want a refusal %d", code, err, ExitFailure)
	}
}

// A domain's invalid requests are logged one by one up to the burst of 20,
// then only counted (C6); the lab's TestC6RefusalsLogBurst shares its
// burst with the lab's probes, so only this test sees the exact number.
func TestRefusalsLoggedUpToTheBurst(t *testing.T) {
	var log testbin.Buffer
	d := &Daemon{MaxCalls: 1, RequestTimeout: 20 * time.Second, Log: slog.New(slog.NewTextHandler(&log, nil))}
	bad, err := Request{Target: "dom0", Service: "$(id)"}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for range 25 {
		conn, caller := net.Pipe()
		served := make(chan struct{})
		go func() {
			d.ServeCall(conn, "vm1")
			close(served)
		}()
		caller.SetDeadline(WaitDeadline(t))
		// A pipe has no buffer: the daemon's hello first, as it sends it.
		if err := readHello(caller); err != nil {
			t.Fatal(err)
		}
		caller.Write(append(append([]byte(nil), helloMessage...), appendMessage(nil, MsgCall, bad)...))
		if code, err := readUint32Message(caller, MsgRefuse); err != nil || code != ExitRefused {
			t.Fatalf("an invalid request: %d, %v; want a refusal %d", code, err, ExitRefused)
		}
		caller.Close()
		Await(t, "the end of the refused call, which frees its slot", served)
	}
	if n := strings.Count(log.String(), "invalid request refused"); n != 20 {
		t.Errorf("%d of 25 invalid requests logged one by one, want the burst of 20:\n%s", n, log.String())
	}
}

// The domain's socket is open to whoever reaches it, the domain's callers
// whatever their user: its directory, 0700, is the boundary (C1).
func TestDomainSocketMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vm1")
	l, err := listenInDomainDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "daemon.sock"): 0o666} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want mode %#o", path, err, want)
		}
	}
}

// A caller's stdin data after its stdin's EOF breaks the protocol and ends
// the call; it is not dropped in silence.
func TestStdinAfterEOFEndsTheCall(t *testing.T) {
	conn, caller := net.Pipe()
	defer conn.Close()
	conn.SetDeadline(WaitDeadline(t))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go io.Copy(io.Discard, r)
	go func() {
		defer caller.Close()
		var msgs []byte
		for _, data := range []string{"a", "", "b"} {
			msgs = appendMessage(msgs, MsgStdin, []byte(data))
		}
		caller.Write(msgs)
	}()
	if err := receiveStdin(conn, w, make(chan struct{})); !errors.Is(err, ErrProtocol) {
		t.Errorf("stdin data after its EOF: %v, want ErrProtocol", err)
	}
}
