package qrexec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// A socket directory that someone other than dom0 could rebuild, itself or
// through a directory above it or a link on the way: a domain's directory
// there could be replaced, so the daemon serves none and pedos-run calls none
// (C1). A sticky directory above it, such as /tmp, is fine.
func TestUnsafeSocketDirRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving directories to another user needs root")
	}
	const nobody = 65534
	runSockDirCases(t, []sockDirCase{
		{"private", func(t *testing.T, top string) string { return mkdirMode(t, top, "sock", 0o755) }, ""},
		{"under a sticky directory", func(t *testing.T, top string) string {
			return mkdirMode(t, mkdirMode(t, top, "tmp", 0o1777), "sock", 0o755)
		}, ""},
		{"writable by others", func(t *testing.T, top string) string { return mkdirMode(t, top, "sock", 0o777) },
			"sock has mode 0777, so others than dom0 may replace what is below it"},
		{"sticky itself", func(t *testing.T, top string) string { return mkdirMode(t, top, "sock", 0o1777) },
			"sock has mode 01777"},
		{"another user's", func(t *testing.T, top string) string { return chownTo(t, mkdirMode(t, top, "sock", 0o755), nobody) },
			"sock belongs to uid 65534"},
		{"in another user's directory", func(t *testing.T, top string) string {
			return mkdirMode(t, chownTo(t, mkdirMode(t, top, "home", 0o755), nobody), "sock", 0o755)
		}, "home belongs to uid 65534"},
		{"below a writable directory", func(t *testing.T, top string) string {
			return mkdirMode(t, mkdirMode(t, top, "shared", 0o777), "sock", 0o755)
		}, "shared has mode 0777"},
		{"through another user's link", func(t *testing.T, top string) string {
			real := mkdirMode(t, top, "real", 0o755)
			link := filepath.Join(mkdirMode(t, top, "tmp", 0o1777), "sock")
			symlink(t, real, link)
			if err := os.Lchown(link, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			return link
		}, "sock is a symbolic link of uid 65534"},
		{"through dom0's chain of links", func(t *testing.T, top string) string {
			real := mkdirMode(t, top, "real", 0o755)
			mkdirMode(t, real, "sock", 0o755)
			symlink(t, real, filepath.Join(top, "l2"))
			symlink(t, "l2", filepath.Join(top, "l1"))
			return filepath.Join(top, "l1", "sock")
		}, ""},
		// A link of dom0's to another user's link, in that user's directory:
		// neither lies on the path as given nor on the path resolved.
		{"through another user's link in a chain", func(t *testing.T, top string) string {
			real := mkdirMode(t, top, "real", 0o755)
			mkdirMode(t, real, "sock", 0o755)
			home := chownTo(t, mkdirMode(t, top, "home", 0o755), nobody)
			symlink(t, real, filepath.Join(home, "l2"))
			if err := os.Lchown(filepath.Join(home, "l2"), nobody, nobody); err != nil {
				t.Fatal(err)
			}
			symlink(t, filepath.Join(home, "l2"), filepath.Join(top, "l1"))
			return filepath.Join(top, "l1", "sock")
		}, "home belongs to uid 65534"},
		{"resolving into another user's directory", func(t *testing.T, top string) string {
			real := mkdirMode(t, chownTo(t, mkdirMode(t, top, "home", 0o755), nobody), "sock", 0o755)
			link := filepath.Join(top, "sock")
			symlink(t, real, link)
			return link
		}, "home belongs to uid 65534"},
	}, func(t *testing.T, sockDir string, c sockDirCase) {
		if c.want == "" {
			return
		}
		domains, err := policy.ParseDomains("domains.conf", []byte("vm1\n"))
		if err != nil {
			t.Fatal(err)
		}
		d := &Daemon{Domains: domains, SockDir: sockDir, Log: slog.New(slog.DiscardHandler)}
		if err := d.ServeUnix(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ServeUnix: %v, want the same refusal", err)
		}
		if _, err := os.Lstat(filepath.Join(sockDir, "vm1")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the domain's directory was made in an unsafe SOCKDIR: %v", err)
		}
		call := CommandCall{SockDir: sockDir, Domain: "vm1", Command: "true"}
		if _, err := call.Run(Streams{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("a command call through it: %v, want the same refusal", err)
		}
	})
}

// sockDirCase is a layout of directories and links: make builds it below
// top and returns SOCKDIR; want is part of CheckSockDir's refusal, "" when
// it must accept it.
type sockDirCase struct {
	name string
	make func(t *testing.T, top string) string
	want string
}

// runSockDirCases builds each case in a directory of its own, checks
// CheckSockDir's verdict, then has then check what else the test is about.
func runSockDirCases(t *testing.T, cases []sockDirCase, then func(t *testing.T, sockDir string, c sockDirCase)) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sockDir := c.make(t, t.TempDir())
			err := CheckSockDir(sockDir)
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("CheckSockDir: %v, want an error with %q", err, c.want)
			}
			then(t, sockDir, c)
		})
	}
}

func mkdirMode(t *testing.T, parent, name string, mode uint32) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(dir, mode); err != nil { // past the umask; 0o1000 is the sticky bit
		t.Fatal(err)
	}
	return dir
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func chownTo(t *testing.T, path string, uid int) string {
	t.Helper()
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	return path
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

// CheckSockDir resolves SOCKDIR as the kernel does (C1; qrexec.md: "one
// socket per domain, in a directory only dom0 and that domain can reach"):
// a link's "." or ".." ends the path where the kernel ends it, so a sticky
// directory others may write is refused there as SOCKDIR itself; a file is
// no socket directory; group or others alone able to write is enough to
// refuse; and a chain of links is followed as far as the kernel follows one
// (40 links), no further.
func TestSockDirResolvedAsTheKernelDoes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a root-owned sticky directory needs root")
	}
	runSockDirCases(t, []sockDirCase{
		{"a link's '..' back into a sticky directory", func(t *testing.T, top string) string {
			mkdirMode(t, mkdirMode(t, top, "tmp", 0o1777), "sub", 0o755)
			symlink(t, "tmp/sub/..", filepath.Join(top, "sock"))
			return filepath.Join(top, "sock")
		}, "tmp has mode 01777"},
		{"a link ending in '.' on a sticky directory", func(t *testing.T, top string) string {
			mkdirMode(t, top, "tmp", 0o1777)
			symlink(t, "tmp/.", filepath.Join(top, "sock"))
			return filepath.Join(top, "sock")
		}, "tmp has mode 01777"},
		{"a regular file", func(t *testing.T, top string) string {
			file := filepath.Join(top, "sock")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return file
		}, "sock is not a directory"},
		{"writable by its group alone", func(t *testing.T, top string) string { return mkdirMode(t, top, "sock", 0o775) },
			"sock has mode 0775"},
		{"writable by others alone", func(t *testing.T, top string) string { return mkdirMode(t, top, "sock", 0o757) },
			"sock has mode 0757"},
		{"below a directory its group may write", func(t *testing.T, top string) string {
			return mkdirMode(t, mkdirMode(t, top, "shared", 0o775), "sock", 0o755)
		}, "shared has mode 0775"},
		{"through 40 links", func(t *testing.T, top string) string { return linkChain(t, top, 40) }, ""},
		{"through 41 links", func(t *testing.T, top string) string { return linkChain(t, top, 41) }, "too many levels of symbolic links"},
	}, func(t *testing.T, sockDir string, c sockDirCase) {
		if _, err := os.Stat(sockDir); c.want == "" && err != nil {
			t.Fatalf("the kernel does not resolve it: %v", err)
		}
	})
}

// linkChain makes top/real and n links to it, each to the next, and
// returns the first.
func linkChain(t *testing.T, top string, n int) string {
	t.Helper()
	mkdirMode(t, top, "real", 0o755)
	next := "real"
	for i := range n {
		name := fmt.Sprintf("l%d", i)
		symlink(t, next, filepath.Join(top, name))
		next = name
	}
	// The kernel agrees on where the limit lies.
	if _, err := os.Stat(filepath.Join(top, next)); (err != nil) != (n > maxLinks) {
		t.Fatalf("the kernel through %d links: %v", n, err)
	}
	return filepath.Join(top, next)
}
