package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/qfile"
	"pedos.dev/updates/internal/testbin"
)

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// Help asked for goes to stdout with 0; a usage error says what is wrong on stderr, writes no
// status, and exits 2. An empty USER is such an error: it would keep root's rights silently.
func TestUsage(t *testing.T) {
	bin := testbin.Path(t, "qfile-dom0-unpacker")
	for _, tc := range []struct {
		args             []string
		code             int
		stdout, inStderr string
	}{
		{[]string{"--help"}, 0, "usage: qfile-dom0-unpacker", ""},
		{[]string{"-h"}, 0, "usage: qfile-dom0-unpacker", ""},
		{[]string{"--bogus", "nobody", t.TempDir()}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"", t.TempDir()}, 2, "", "USER is empty"},
		{[]string{"nobody"}, 2, "", "want USER and DIR, got 1 operand(s)"},
		{[]string{"nobody", t.TempDir(), "--timeout", "0s"}, 2, "", "--timeout 0s is not positive"},
	} {
		stdout, stderr, code := testbin.Run(t, exec.Command(bin, tc.args...))
		if code != tc.code || !strings.HasPrefix(stdout, tc.stdout) || tc.stdout == "" && stdout != "" ||
			!strings.Contains(stderr, tc.inStderr) || tc.code == 0 && stderr != "" {
			t.Errorf("%q: exit %d, stdout %.40q, stderr %.80q; want exit %d, stdout starting %q, stderr with %q",
				tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.inStderr)
		}
	}
}

// After "--" every word is an operand, not an option: a DIR named -v, here a file, is
// ENOTDIR, not the -v option and one operand short.
func TestOperandsAfterTheEndOfOptions(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "-v"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), "--", "nobody", "-v")
	cmd.Dir = dir
	if _, stderr, code := testbin.Run(t, cmd); code != int(syscall.ENOTDIR) || !strings.Contains(stderr, "-v: not a directory") {
		t.Errorf("exit %d, stderr %q; want ENOTDIR for the DIR -v", code, stderr)
	}
}

// A DIR the user cannot write is refused before the stream is read, with a message that says
// so rather than the first file's "permission denied".
func TestDirNotWritable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to switch to nobody")
	}
	stdout, stderr, code := testbin.Run(t, exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), "nobody", t.TempDir(), "--only-regular-files"))
	if code != int(syscall.EACCES) || stdout == "" || !strings.Contains(stderr, "is not writable by the user the unpacker runs as (nobody)") {
		t.Errorf("exit %d, %d bytes of status, stderr %q; want EACCES with a status and the reason", code, len(stdout), stderr)
	}
}

// A DIR that is not a directory is ENOTDIR, in the status and the exit code, and a FIFO
// there does not hold the unpacker before its deadline starts.
func TestDirNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, fifo} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // killed after
		defer cancel()
		cmd := exec.CommandContext(ctx, testbin.Path(t, "qfile-dom0-unpacker"), "nobody", dir, "--only-regular-files")
		stdout, stderr, code := testbin.Run(t, cmd)
		if code != int(syscall.ENOTDIR) || stdout == "" || !strings.Contains(stderr, dir+": not a directory") {
			t.Errorf("%s: exit %d, %d bytes of status, stderr %q; want ENOTDIR with a status and the path", dir, code, len(stdout), stderr)
		}
	}
}

// The log line of a refusal the spec gives a code ends with the code's name, not the C
// library's misleading words for it; other errors keep theirs.
func TestSaid(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf(`"l": unsafe symlink target: %w`, syscall.ENOLINK), `"l": unsafe symlink target (ENOLINK)`},
		{fmt.Errorf("refused a name (S1, S2): the name has an empty component: %w", syscall.EILSEQ), "refused a name (S1, S2): the name has an empty component (EILSEQ)"},
		{fmt.Errorf(`"a": stream ended inside a file (S6): %w`, syscall.Errno(qfile.LegalEOF)), `"a": stream ended inside a file (S6) (legal EOF)`},
		{fmt.Errorf(`"a": %w`, syscall.EEXIST), `"a": file exists`},
		{errors.New("no errno"), "no errno"},
	} {
		if got := said(tc.err); got != tc.want {
			t.Errorf("said(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Of two bad limits the error names the same one every time, whatever the
// order Go ranges over maps in.
func TestLimitsFromEnvNamesTheFirstBadOne(t *testing.T) {
	t.Setenv("UPDATES_MAX_BYTES", "lots")
	t.Setenv("UPDATES_MAX_FILES", "0")
	for range 20 {
		if _, _, err := limitsFromEnv(); err == nil || !strings.HasPrefix(err.Error(), `UPDATES_MAX_BYTES="lots"`) {
			t.Fatalf("limitsFromEnv: %v, want UPDATES_MAX_BYTES named", err)
		}
	}
	// A number too large for a limit is said to be so, not "not a decimal number".
	t.Setenv("UPDATES_MAX_BYTES", "99999999999999999999")
	if _, _, err := limitsFromEnv(); err == nil || !strings.HasSuffix(err.Error(), "is larger than 18446744073709551615") {
		t.Errorf("limitsFromEnv: %v, want the value said to be too large", err)
	}
}

// The file size limit (UPDATES_MAX_BYTES, as RLIMIT_FSIZE) bounds the received files, not the
// unpacker's own status and stderr when they are files: run by hand with a small limit, the
// status and the messages (here a refusal, appended to a log longer than the limit) are whole,
// with stderr a file or a pipe.
func TestSmallByteLimitLeavesOutputFilesWhole(t *testing.T) {
	// One 3-byte file, over the limit of 2, then the end marker (spec "Forward stream").
	header := func(nameLen, mode uint32, fileLen uint64) []byte {
		b := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, nameLen), mode)
		return append(binary.LittleEndian.AppendUint64(b, fileLen), make([]byte, 16)...)
	}
	stream := append(header(2, qfile.ModeRegular|0o644, 3), "a\x00abc"...)
	stream = append(stream, header(0, 0, 0)...)
	earlier := strings.Repeat("an earlier line\n", 10)
	for _, stderrIsFile := range []bool{true, false} {
		dir := t.TempDir()
		status, err := os.Create(filepath.Join(dir, "status"))
		if err != nil {
			t.Fatal(err)
		}
		defer status.Close()
		out := filepath.Join(dir, "out")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), fmt.Sprint(os.Geteuid()), out, "--only-regular-files")
		cmd.Env = append(os.Environ(), "UPDATES_MAX_BYTES=2")
		cmd.Stdin, cmd.Stdout = strings.NewReader(string(stream)), status
		logPath := filepath.Join(dir, "log")
		var piped strings.Builder
		if stderrIsFile {
			if err := os.WriteFile(logPath, []byte(earlier), 0o600); err != nil {
				t.Fatal(err)
			}
			log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			cmd.Stderr = log
		} else {
			cmd.Stderr = &piped
		}
		err = cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != int(syscall.EDQUOT) {
			t.Errorf("stderr a file %v: exit %d (%v), want EDQUOT", stderrIsFile, code, err)
		}
		// result_header (code, pad, CRC), then the extension's name length and name.
		written, _ := os.ReadFile(status.Name())
		if len(written) < qfile.StatusSize+4 || binary.LittleEndian.Uint32(written) != uint32(syscall.EDQUOT) ||
			len(written) != qfile.StatusSize+4+int(binary.LittleEndian.Uint32(written[qfile.StatusSize:])) {
			t.Errorf("stderr a file %v: status file holds %d bytes (%q), want one whole EDQUOT status", stderrIsFile, len(written), written)
		}
		if stderrIsFile {
			logged, _ := os.ReadFile(logPath)
			if rest, ok := strings.CutPrefix(string(logged), earlier); !ok || !strings.Contains(rest, "qfile-dom0-unpacker:") || !strings.HasSuffix(rest, "\n") {
				t.Errorf("log after the refusal: %q; want the earlier lines and the unpacker's whole message", logged)
			}
		} else if strings.Contains(piped.String(), "sending the status") {
			t.Errorf("stderr: %q; want the status sent", piped.String())
		}
	}
}

// With -v and stderr a file, the names a stream makes the unpacker log cannot push out the
// message that ends it: RLIMIT_FSIZE leaves the log a mebibyte, and the names stop short of
// it, saying so (the qfile black-box: 5,000 long names, then a refused one, left no refusal).
func TestVerboseLogLeavesRoomForTheRefusal(t *testing.T) {
	header := func(nameLen, mode uint32, fileLen uint64) []byte {
		b := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, nameLen), mode)
		return append(binary.LittleEndian.AppendUint64(b, fileLen), make([]byte, 16)...)
	}
	var stream []byte
	for i := range 5000 {
		name := fmt.Sprintf("%05d-%s", i, strings.Repeat("n", 240))
		stream = append(append(stream, header(uint32(len(name)+1), qfile.ModeRegular|0o644, 0)...), name+"\x00"...)
	}
	stream = append(append(stream, header(7, qfile.ModeRegular|0o644, 0)...), "../bad\x00"...)
	stream = append(stream, header(0, 0, 0)...)
	// An empty log, and one that holds earlier runs' lines: the mebibyte is
	// counted from where the log ends.
	for _, earlier := range []int{0, 512 << 10} {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, "log")
		if err := os.WriteFile(logPath, bytes.Repeat([]byte("an earlier line\n"), earlier/16), 0o600); err != nil {
			t.Fatal(err)
		}
		log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close()
		cmd := exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), fmt.Sprint(os.Geteuid()), out, "--only-regular-files", "-v")
		cmd.Env = append(os.Environ(), "UPDATES_MAX_BYTES=10", "UPDATES_MAX_FILES=6000")
		cmd.Stdin, cmd.Stderr = bytes.NewReader(stream), log
		err = cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != int(syscall.EILSEQ) {
			t.Errorf("earlier log of %d bytes: exit %d (%v), want EILSEQ", earlier, code, err)
		}
		logged, _ := os.ReadFile(logPath)
		if !strings.Contains(string(logged), "no more names logged") || !strings.Contains(string(logged), "refused a name") || len(logged) > earlier+1<<20 {
			t.Errorf("earlier log of %d bytes: log of %d bytes ends %q; want the names cut short, saying so, and the refusal", earlier, len(logged), logged[max(0, len(logged)-400):])
		}
	}
}

// With stderr a pipe, which no file size limit bounds, -v logs every name,
// whatever UPDATES_MAX_BYTES is (the room kept for the refusal is a
// file's only).
func TestVerboseLogToAPipeNamesEveryFile(t *testing.T) {
	header := func(nameLen, mode uint32, fileLen uint64) []byte {
		b := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, nameLen), mode)
		return append(binary.LittleEndian.AppendUint64(b, fileLen), make([]byte, 16)...)
	}
	var stream []byte
	for _, name := range []string{"a", "b", "c"} {
		stream = append(append(stream, header(2, qfile.ModeRegular|0o644, 0)...), name+"\x00"...)
	}
	stream = append(stream, header(0, 0, 0)...)
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), fmt.Sprint(os.Geteuid()), out, "--only-regular-files", "-v")
	cmd.Env = append(os.Environ(), "UPDATES_MAX_BYTES=65536")
	cmd.Stdin = bytes.NewReader(stream)
	_, stderr, code := testbin.Run(t, cmd)
	if code != 0 || strings.Count(stderr, "qfile-dom0-unpacker: received ") != 3 || strings.Contains(stderr, "no more names") {
		t.Errorf("exit %d, stderr %q; want 0 and the three names", code, stderr)
	}
}

// TestTheProgramRunsConfined: the program's own sandbox, seen from outside while it waits
// for its stream (the sandbox package's tests use a policy of their own): the user it was
// given, no capabilities, no-new-privs, a seccomp filter, and RLIMIT_FSIZE at the byte limit
// (docs/sandbox.md; threat-model.md, "all S"). Landlock leaves nothing to read in /proc.
func TestTheProgramRunsConfined(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to switch to nobody")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	stdin, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testbin.Path(t, "qfile-dom0-unpacker"), "nobody", dir, "--only-regular-files")
	cmd.Env = append(os.Environ(), "UPDATES_MAX_BYTES=123456")
	cmd.Stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	defer func() {
		feed.Close() // EOF: the unpacker ends (no end marker)
		cmd.Wait()
	}()
	proc := fmt.Sprintf("/proc/%d/", cmd.Process.Pid)
	var status string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(proc + "status")
		if status = string(b); err != nil || strings.Contains(status, "Seccomp:\t2\n") {
			break
		}
	}
	for _, want := range []string{"Uid:\t65534\t65534\t65534\t65534\n", "Gid:\t65534\t65534\t65534\t65534\n", "Groups:\t \n",
		"CapEff:\t0000000000000000\n", "CapPrm:\t0000000000000000\n", "NoNewPrivs:\t1\n", "Seccomp:\t2\n"} {
		if !strings.Contains(status, want) {
			t.Errorf("%sstatus lacks %q:\n%s", proc, want, status)
		}
	}
	limits, err := os.ReadFile(proc + "limits")
	if err != nil || !regexp.MustCompile(`(?m)^Max file size +123456 +123456 +bytes`).Match(limits) {
		t.Errorf("%slimits (%v): want the file size limit at UPDATES_MAX_BYTES:\n%s", proc, err, limits)
	}
}
