package dom0_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
)

// The unpacker is called as qfile.md says (`qfile-dom0-unpacker USER DIR
// --only-regular-files`: the dom0 update path takes regular files only),
// with -v for its reports, --no-sync, the session's time left, and an
// environment of PATH and its two limits only. UPDATES_MAX_BYTES is the
// smaller of max_bytes and 45 % of the staging file system's free space
// (operations.md, max_bytes: each byte is stored twice, S8, S13).
func TestUnpackerCommandLineAndLimits(t *testing.T) {
	c, batch := benchDom0(t, nil)
	c.ReceiveTimeout, c.MaxFiles = 90*time.Second, 77
	parent := c.Path(dom0.StagingDir)
	if err := os.MkdirAll(parent, 0o711); err != nil {
		t.Fatal(err)
	}
	testbin.Tmpfs(t, parent, "size=2m")
	seen := filepath.Join(t.TempDir(), "seen")
	script := `printf '%s\n' "$@" >` + seen + `.args
tr '\0' '\n' </proc/self/environ >` + seen + `.env
`
	res, log, err := deliverStaged(t, c, batch.Files(), script)
	if !res.Accepted {
		t.Fatalf("refused (%v): %s; log:\n%s", err, res.Error, log)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(parent, &fs); err != nil { // as free as when the delivery started
		t.Fatal(err)
	}
	wantBytes := min(c.MaxBytes, int64(fs.Bavail*uint64(fs.Frsize)/100*45))
	args, err := os.ReadFile(seen + ".args")
	if err != nil {
		t.Fatal(err)
	}
	// The session's time left, at most receive_timeout: a second or so under 90 s.
	want := []string{c.UnpackerUser, filepath.Join(parent, res.Session), "--only-regular-files", "--no-sync", "-v", "--timeout"}
	got := strings.Fields(string(args))
	if len(got) != len(want)+1 || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("the unpacker's arguments are %q, want %q and a duration", got, want)
	}
	if d, err := time.ParseDuration(got[len(want)]); err != nil || d < 80*time.Second || d > 90*time.Second {
		t.Errorf("--timeout %s (%v), want the session's time left, up to 1m30s", got[len(want)], err)
	}
	env, err := os.ReadFile(seen + ".env")
	if err != nil {
		t.Fatal(err)
	}
	wantEnv := []string{"PATH=/usr/bin:/bin", "UPDATES_MAX_BYTES=" + strconv.FormatInt(wantBytes, 10), "UPDATES_MAX_FILES=77"}
	if got := strings.Fields(string(env)); !slices.Equal(got, wantEnv) {
		t.Errorf("the unpacker's environment is %q, want %q", got, wantEnv)
	}
}

// The unpacker's exit status is its errno (qfile.md "Status"), and the result says what it
// means: "legal EOF" (31415926, which it exits with as 255) is a truncated stream (S6), EDQUOT
// a limit, which the result names with its values (S8), ENOSPC dom0's full disk, any other
// errno its meaning; a signal is no status at all.
func TestUnpackerStatusIsNamed(t *testing.T) {
	c, batch := benchDom0(t, nil)
	c.MaxFiles = 99
	for _, tc := range []struct{ script, want string }{
		{"exit 255\n", "the unpacker refused the stream: it was truncated, ending inside a file or a name (S6)"},
		{"exit 122\n", "the unpacker refused the stream: over a limit (EDQUOT): at most 99 files (max_files) and "},
		{"exit 1\n", "the unpacker refused the stream: "},
		// dom0's own disk, not the stream's fault.
		{"exit 28\n", "dom0's disk is full: the staging directory "},
		{"sleep 60 # killed\n", "the unpacker was killed (signal: killed) while reading the stream from "},
	} {
		stop := func() {}
		if strings.Contains(tc.script, "killed") {
			// The stand-in is pid 1 of its own pid namespace, where no signal reaches it:
			// it is killed from here.
			stop = killStandIn(t, c.Path(dom0.StagingDir))
		}
		res, log, err := deliverStaged(t, c, batch.Files(), tc.script)
		stop()
		if err == nil || res.Accepted || !strings.HasPrefix(res.Error, tc.want) || strings.Contains(res.Error, "EDQUOT") != strings.Contains(tc.want, "EDQUOT") {
			t.Errorf("%q: accepted %v (%v): %s; want an error starting %q; log:\n%s", tc.script, res.Accepted, err, res.Error, tc.want, log)
		}
		if tc.script == "exit 1\n" && !strings.Contains(res.Error, "(EPERM)") {
			t.Errorf("exit 1: %s; want its errno named (EPERM)", res.Error)
		}
	}
}

// killStandIn kills, from this pid namespace, the stand-in unpacker (a shell running
// fake-unpacker) whose staging directory is below staging, once it runs; stop ends the watch.
func killStandIn(t *testing.T, staging string) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			select {
			case <-done:
				return
			default:
			}
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				pid, err := strconv.Atoi(e.Name())
				cmdline, rerr := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				if err != nil || rerr != nil {
					continue
				}
				argv := strings.Split(string(cmdline), "\x00")
				if len(argv) > 3 && strings.HasSuffix(argv[1], "fake-unpacker") && strings.HasPrefix(argv[3], staging+"/") {
					unix.Kill(pid, unix.SIGKILL)
					return
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// The unpacker's stderr reaches dom0's log bounded (a compromised unpacker must not flood
// it): its first 100 lines, then one note; a line too long to read ends the logging with a
// note; a line that is not exactly the -v report's form is logged, never taken as a report.
// Its last line is quoted in the result cut to 200 bytes.
func TestUnpackerOutputIsBounded(t *testing.T) {
	c, batch := benchDom0(t, nil)
	const cut = "the rest is not logged"
	long := strings.Repeat("y", 70000)
	for _, tc := range []struct {
		name, script string
		check        func(t *testing.T, res dom0.Result, log string)
	}{
		{"101 lines", "for i in $(seq 101); do echo \"noise $i\"; done >&2\n", func(t *testing.T, _ dom0.Result, log string) {
			if !strings.Contains(log, "noise 100\n") || strings.Contains(log, "noise 101\n") || strings.Count(log, cut) != 1 ||
				!strings.Contains(log, "more than 100 lines of output") {
				t.Errorf("101 lines: want 100 logged and one note:\n%.300s", log)
			}
		}},
		{"a line too long", "echo " + long + " >&2\necho after >&2\n", func(t *testing.T, _ dom0.Result, log string) {
			if !strings.Contains(log, "a line of its output was too long; "+cut) || strings.Contains(log, "yyyy") || strings.Contains(log, "after") {
				t.Errorf("a line too long: want a note only:\n%.300s", log)
			}
		}},
		{"a quoted name without the report's prefix", `echo '"hint9999-1.0-1.noarch.rpm" (1 bytes)' >&2` + "\n", func(t *testing.T, _ dom0.Result, log string) {
			if !strings.Contains(log, `"hint9999-1.0-1.noarch.rpm" (1 bytes)`+"\n") || strings.Contains(log, cut) {
				t.Errorf("the line is not logged as it is:\n%.300s", log)
			}
		}},
		{"a last line of 200 bytes", "echo " + strings.Repeat("z", 200) + " >&2\nexit 17\n", func(t *testing.T, res dom0.Result, _ string) {
			if !strings.HasSuffix(res.Error, "it said: "+strings.Repeat("z", 200)) {
				t.Errorf("result %q, want the whole line of 200 bytes", res.Error)
			}
		}},
		{"a report without its size", `echo 'qfile-dom0-unpacker: received "hint9999-1.0-1.noarch.rpm"' >&2` + "\n", func(t *testing.T, _ dom0.Result, log string) {
			if !strings.Contains(log, `received "hint9999-1.0-1.noarch.rpm"`+"\n") {
				t.Errorf("the line is not logged as it is:\n%.300s", log)
			}
		}},
		{"a last line of 201 bytes", "echo " + strings.Repeat("z", 201) + " >&2\nexit 17\n", func(t *testing.T, res dom0.Result, _ string) {
			if !strings.HasSuffix(res.Error, "it said: "+strings.Repeat("z", 200)+"…") {
				t.Errorf("result %q, want the line cut after 200 bytes", res.Error)
			}
		}},
		{"a last line of 300 bytes", "echo " + strings.Repeat("z", 300) + " >&2\nexit 17\n", func(t *testing.T, res dom0.Result, _ string) {
			if !strings.HasSuffix(res.Error, "it said: "+strings.Repeat("z", 200)+"…") {
				t.Errorf("result %q, want the line cut after 200 bytes", res.Error)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, log, _ := deliverStaged(t, c, batch.Files(), tc.script)
			tc.check(t, res, log)
		})
	}
}

// An unpacker that cannot be started is named with the reason (threats.md: "a clear error
// naming the cause").
func TestUnpackerThatCannotStart(t *testing.T) {
	c, _ := benchDom0(t, nil)
	session, err := startSession(t, c, dom0.Session{Action: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-unpacker")
	r := &dom0.Receiver{Config: c, Unpacker: missing, Log: &strings.Builder{}, Now: time.Now}
	err = r.Serve(t.Context(), c.UpdateVM, session.ID, strings.NewReader(""), &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "running the unpacker: fork/exec "+missing+": no such file or directory") {
		t.Errorf("Serve with a missing unpacker: %v, want its reason", err)
	}
}

// verify.md §1 "Keys": a key rpm cannot import is a warning in the log, whatever becomes
// of the delivery, also when the unpacker refuses the stream before any package is checked.
// (A go-crypto signing subkey, which rpm 4.18 cannot import: testrepo's doc.)
func TestKeyWarningsLoggedWhenTheUnpackerRefuses(t *testing.T) {
	subkeySigner, err := testrepo.NewSigner(testrepo.KeySpec{Name: "subkey signer", SigningSubkey: true})
	if err != nil {
		t.Fatal(err)
	}
	c, batch := benchDom0(t, subkeySigner)
	res, log, _ := deliverStaged(t, c, batch.Files(), "exit 17\n")
	if res.Accepted || !strings.Contains(log, "warning: rpmkeys --import ") {
		t.Errorf("accepted %v: %s; want the key import's warning in the log:\n%s", res.Accepted, res.Error, log)
	}
}
