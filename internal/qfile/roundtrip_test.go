package qfile

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/testbin"
)

// transferResult is what the two real binaries did.
type transferResult struct {
	agentExit, unpackerExit     int
	agentStderr, unpackerStderr string
	agentRSS, unpackerRSS       int64 // peak resident set, KiB
	elapsed                     time.Duration
}

// transfer runs the real qfile-agent on paths and the real qfile-dom0-unpacker on dir,
// connected by two pipes the way qrexec connects them.
func transfer(t testing.TB, dir string, env, unpackerArgs []string, paths ...string) transferResult {
	t.Helper()
	forwardR, forwardW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var agentStderr, unpackerStderr bytes.Buffer
	agent := measuredCommand(t, testbin.Path(t, "qfile-agent"), paths...)
	agent.Stdin, agent.Stdout, agent.Stderr = statusR, forwardW, &agentStderr
	unpacker := measuredCommand(t, testbin.Path(t, "qfile-dom0-unpacker"), append([]string{currentUser(), dir}, unpackerArgs...)...)
	unpacker.Stdin, unpacker.Stdout, unpacker.Stderr = forwardR, statusW, &unpackerStderr
	unpacker.Env = append(os.Environ(), env...)
	start := time.Now()
	if err := unpacker.Start(); err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	// Only the children may hold the pipes now, so that each sees EOF when the other exits.
	for _, f := range []*os.File{forwardR, forwardW, statusR, statusW} {
		f.Close()
	}
	_ = agent.Wait()
	_ = unpacker.Wait()
	return transferResult{
		agentExit: agent.ProcessState.ExitCode(), unpackerExit: unpacker.ProcessState.ExitCode(),
		agentStderr: agentStderr.String(), unpackerStderr: unpackerStderr.String(),
		agentRSS: agent.peakRSS(t), unpackerRSS: unpacker.peakRSS(t),
		elapsed: time.Since(start),
	}
}

// gnuTime measures a command's own peak RSS. Without it, rusage counts the test process too:
// a child that Go starts shares its memory until it execs, and the kernel records that.
const gnuTime = "/usr/bin/time"

// measuredCmd is a command whose peak RSS is measured, through GNU time when available.
type measuredCmd struct {
	*exec.Cmd
	rssFile string // where GNU time writes it, "" without GNU time
}

func measuredCommand(t testing.TB, name string, args ...string) measuredCmd {
	c := measuredCmd{Cmd: exec.Command(name, args...)}
	if _, err := os.Stat(gnuTime); err == nil {
		c.rssFile = filepath.Join(t.TempDir(), "rss")
		c.Cmd = exec.Command(gnuTime, append([]string{"-f", "%M", "-o", c.rssFile, name}, args...)...)
	}
	testbin.StopAtEnd(t, c.Cmd) // GNU time's child, the program measured, goes with it
	return c
}

// peakRSS is the command's peak resident set in KiB (an upper bound without GNU time).
func (c measuredCmd) peakRSS(t testing.TB) int64 {
	if c.rssFile == "" {
		return c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	}
	out, err := os.ReadFile(c.rssFile)
	if err != nil {
		t.Fatalf("reading the peak RSS: %v", err)
	}
	// The last line; GNU time puts "Command exited with non-zero status N" before it.
	lines := strings.Fields(string(out))
	kib, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		t.Fatalf("peak RSS from %s: %q", gnuTime, out)
	}
	return kib
}

func (r transferResult) wantSuccess(t testing.TB) {
	t.Helper()
	if r.agentExit != 0 || r.unpackerExit != 0 {
		t.Fatalf("agent exit %d, unpacker exit %d\nagent: %s\nunpacker: %s", r.agentExit, r.unpackerExit, r.agentStderr, r.unpackerStderr)
	}
}

// writeFile creates path with size pseudo-random bytes (seeded by seed) and mode.
func writeFile(t testing.TB, path string, size int, seed uint64, mode os.FileMode) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	random := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	block := make([]byte, min(size, 1<<20))
	for size > 0 {
		n := min(size, len(block))
		_, _ = random.Read(block[:n])
		if _, err := f.Write(block[:n]); err != nil {
			t.Fatal(err)
		}
		size -= n
	}
	if err := f.Chmod(mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func mustDo(t testing.TB, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestRoundTripTree: directories, symlinks, unicode names, empty and executable files, in the
// default mode, arrive with the same types, modes, sizes, contents and mtimes.
func TestRoundTripTree(t *testing.T) {
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	mustDo(t, os.MkdirAll(filepath.Join(tree, "a", "b"), 0o755), os.Mkdir(filepath.Join(tree, "private"), 0o700),
		os.Mkdir(filepath.Join(tree, "empty dir"), 0o755), os.Chmod(filepath.Join(tree, "empty dir"), 0o555))
	writeFile(t, filepath.Join(tree, "żółć-日本語.txt"), 10, 1, 0o644)
	writeFile(t, filepath.Join(tree, "a", "Ωmega ü 🙂.bin"), 70000, 2, 0o644)
	writeFile(t, filepath.Join(tree, "a", "b", "run.sh"), 18, 3, 0o755)
	writeFile(t, filepath.Join(tree, "a", "b", "empty"), 0, 4, 0o600)
	writeFile(t, filepath.Join(tree, "private", "key"), 7, 5, 0o600)
	mustDo(t, os.Symlink("../żółć-日本語.txt", filepath.Join(tree, "a", "up-link")),
		os.Symlink("b/run.sh", filepath.Join(tree, "a", "down-link")))
	writeFile(t, filepath.Join(src, "single"), 3, 6, 0o640)
	writeFile(t, filepath.Join(src, "empty"), 0, 7, 0o644)

	dir := stagingDir(t)
	transfer(t, dir, nil, nil, tree, filepath.Join(src, "single"), filepath.Join(src, "empty")).wantSuccess(t)
	if got, want := treeOf(t, dir, true), treeOf(t, src, true); !slices.Equal(got, want) {
		t.Errorf("received:\n%s\nsent:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	onlyStagingExists(t, dir)
}

// TestRoundTripDom0Mode: regular files, empty ones included, in the dom0 update mode.
func TestRoundTripDom0Mode(t *testing.T) {
	src := t.TempDir()
	var paths []string
	for i, size := range []int{0, 0, 1, 4096, 70000} {
		path := filepath.Join(src, fmt.Sprintf("pkg-%d.rpm", i))
		writeFile(t, path, size, uint64(i), 0o644)
		paths = append(paths, path)
	}
	dir := stagingDir(t)
	transfer(t, dir, nil, []string{"--only-regular-files"}, paths...).wantSuccess(t)
	if got, want := treeOf(t, dir, true), treeOf(t, src, true); !slices.Equal(got, want) {
		t.Errorf("received:\n%s\nsent:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestEndMarkerOnly: a stream of the end marker alone is a success that creates nothing.
func TestEndMarkerOnly(t *testing.T) {
	dir := stagingDir(t)
	res := runUnpacker(t, dir, pipeWith(t, endMarker, false), nil, "--only-regular-files")
	wantCode(t, res.status.Code, 0, res.stderr)
	if res.status.CRC != 0x190a55ad { // what the reference receiver reports for it
		t.Errorf("CRC %#08x, want 0x190a55ad", res.status.CRC)
	}
	if got := treeOf(t, dir, false); len(got) != 0 {
		t.Errorf("DIR holds %q", got)
	}
}

// TestEmptyDelivery: qfile-agent with no FILE sends the end marker alone, and the
// unpacker confirms it ("nothing new", not "nothing arrived").
func TestEmptyDelivery(t *testing.T) {
	dir := stagingDir(t)
	transfer(t, dir, nil, []string{"--only-regular-files"}).wantSuccess(t)
	if got := treeOf(t, dir, false); len(got) != 0 {
		t.Errorf("DIR holds %q", got)
	}
}

func TestRoundTrip100MiB(t *testing.T) {
	src := t.TempDir()
	path := filepath.Join(src, "big.bin")
	writeFile(t, path, 100<<20, 100, 0o644)
	dir := stagingDir(t)
	transfer(t, dir, nil, []string{"--only-regular-files"}, path).wantSuccess(t)
	if got, want := treeOf(t, dir, true), treeOf(t, src, true); !slices.Equal(got, want) {
		t.Errorf("received %q, sent %q", got, want)
	}
}

func TestRoundTrip10000Files(t *testing.T) {
	src := t.TempDir()
	many := filepath.Join(src, "many")
	mustDo(t, os.Mkdir(many, 0o755))
	for i := range 10000 {
		writeFile(t, filepath.Join(many, fmt.Sprintf("f%05d", i)), i%100, uint64(i), 0o644)
	}
	dir := stagingDir(t)
	transfer(t, dir, []string{"UPDATES_MAX_FILES=10002"}, nil, many).wantSuccess(t)
	if got, want := treeOf(t, dir, true), treeOf(t, src, true); !slices.Equal(got, want) {
		t.Errorf("received %d entries, sent %d (or they differ)", len(got), len(want))
	}
}

// TestRoundTripRefused: the agent stops at the receiver's error and names it and the file.
func TestRoundTripRefused(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "ok.rpm"), 10, 1, 0o644)
	mustDo(t, os.Mkdir(filepath.Join(src, "subdir"), 0o755))
	writeFile(t, filepath.Join(src, "big.rpm"), 40<<20, 2, 0o644)
	for _, tc := range []struct {
		name  string
		env   []string
		paths []string
		want  []string
	}{
		{"directory-in-dom0-mode", nil, []string{"ok.rpm", "subdir", "big.rpm"}, []string{"EINVAL", `"subdir"`}},
		// Refused before its first byte is written; the agent learns it while still sending.
		{"over-the-byte-limit", []string{"UPDATES_MAX_BYTES=1000"}, []string{"ok.rpm", "big.rpm"}, []string{"EDQUOT", `"big.rpm"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var paths []string
			for _, p := range tc.paths {
				paths = append(paths, filepath.Join(src, p))
			}
			dir := stagingDir(t)
			res := transfer(t, dir, tc.env, []string{"--only-regular-files"}, paths...)
			if res.agentExit != 1 {
				t.Errorf("agent exit %d, want 1", res.agentExit)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.agentStderr, w) {
					t.Errorf("agent says %q; want it to name %s", res.agentStderr, w)
				}
			}
			onlyStagingExists(t, dir)
		})
	}
}

// TestRoundTripAsNobody: run as root, the unpacker switches to USER; the files are USER's.
func TestRoundTripAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	const nobody = 65534
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.rpm"), 100, 1, 0o644)
	dir := stagingDir(t)
	mustDo(t, os.Chown(dir, nobody, nobody))
	forwardR, forwardW, err := os.Pipe()
	mustDo(t, err)
	statusR, statusW, err := os.Pipe()
	mustDo(t, err)
	agent := exec.Command(testbin.Path(t, "qfile-agent"), filepath.Join(src, "a.rpm"))
	agent.Stdin, agent.Stdout = statusR, forwardW
	unpacker := exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), fmt.Sprint(nobody), dir, "--only-regular-files")
	unpacker.Stdin, unpacker.Stdout = forwardR, statusW
	testbin.StopAtEnd(t, agent)
	testbin.StopAtEnd(t, unpacker)
	mustDo(t, unpacker.Start(), agent.Start())
	for _, f := range []*os.File{forwardR, forwardW, statusR, statusW} {
		f.Close()
	}
	mustDo(t, agent.Wait(), unpacker.Wait())
	fi, err := os.Stat(filepath.Join(dir, "a.rpm"))
	mustDo(t, err)
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != nobody {
		t.Errorf("a.rpm belongs to uid %d, want %d", uid, nobody)
	}
}

// TestUnusableUser: a USER the unpacker cannot become is an invalid argument (EINVAL), in the
// status and the exit code, not an I/O error; nothing is received.
func TestUnusableUser(t *testing.T) {
	dir := stagingDir(t)
	cmd := exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), "pedos-no-such-user", dir, "--only-regular-files")
	cmd.Stdin = fileWith(t, stream(entry("a.rpm", regularMode, []byte("x"))))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	st, ok := parseStatus(stdout.Bytes())
	if !ok || st.Code != uint32(syscall.EINVAL) || cmd.ProcessState.ExitCode() != int(syscall.EINVAL) ||
		!strings.Contains(stderr.String(), "no such user") {
		t.Errorf("status %+v (ok=%v), exit %d, stderr %q: want EINVAL saying there is no such user",
			st, ok, cmd.ProcessState.ExitCode(), stderr.String())
	}
	onlyStagingExists(t, dir)
}
