package atomicfile_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/atomicfile"
)

// What is not a regular file at a state or log file's path is refused at
// once, for reading and for appending, naming what it is: a FIFO no one
// opens the other end of would hang the program for good (signals too),
// and a link to a missing file would pass for no file at all.
func TestOpenRegularRefusesWhatIsNoFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink("/nonexistent/state.json", dangling); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		flag int
		kind string
	}{
		{fifo, os.O_RDONLY, "a FIFO"},
		{fifo, os.O_WRONLY | os.O_APPEND | os.O_CREATE, "a FIFO"},
		{dir, os.O_RDONLY, "a directory"},
		{os.DevNull, os.O_RDONLY, "a device"},
		// Not "no file": an optional file would be silently missing.
		{dangling, os.O_RDONLY, "a symbolic link to a missing file (on a file system not mounted?)"},
	} {
		f, err := atomicfile.OpenRegular(c.path, c.flag, 0o600)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, atomicfile.ErrNotRegular) || !strings.Contains(err.Error(), c.path) || !strings.HasSuffix(err.Error(), c.kind) {
			t.Errorf("OpenRegular(%s, %#x) = %v, want it refused as %s", c.path, c.flag, err, c.kind)
		}
	}
	file := filepath.Join(dir, "state.json")
	if err := os.WriteFile(file, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := atomicfile.ReadRegular(file, 5); err != nil || string(data) != "12345" {
		t.Errorf("ReadRegular of 5 bytes, at most 5: %q, %v", data, err)
	}
	if _, err := atomicfile.ReadRegular(file, 4); err == nil || !strings.Contains(err.Error(), "larger than 4 bytes") {
		t.Errorf("ReadRegular of 5 bytes, at most 4: %v, want it refused", err)
	}
	if _, err := atomicfile.ReadRegular(filepath.Join(dir, "missing"), 4); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadRegular of a missing file: %v, want ErrNotExist", err)
	}
}

// A socket and a block device at a state or log file's path are refused
// too, named for what they are (the open of either fails with ENXIO, as a
// FIFO's for writing does, and is turned into the same refusal).
func TestOpenRegularNamesSocketsAndBlockDevices(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "socket")
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	cases := []struct{ path, kind string }{{socket, "a socket"}}
	if os.Geteuid() == 0 {
		// Major 240 is for local use: no driver answers the open.
		block := filepath.Join(dir, "block")
		if err := syscall.Mknod(block, syscall.S_IFBLK|0o600, int(unix.Mkdev(240, 0))); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ path, kind string }{block, "a device"})
	}
	for _, c := range cases {
		for _, flag := range []int{os.O_RDONLY, os.O_WRONLY | os.O_APPEND | os.O_CREATE} {
			f, err := atomicfile.OpenRegular(c.path, flag, 0o600)
			if err == nil {
				f.Close()
			}
			if !errors.Is(err, atomicfile.ErrNotRegular) || !strings.HasSuffix(err.Error(), c.kind) {
				t.Errorf("OpenRegular(%s, %#x) = %v, want it refused as %s", c.path, flag, err, c.kind)
			}
		}
	}
}
