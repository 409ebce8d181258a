package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/benchrun"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
)

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// runBin runs pedos-dom0-update and returns its stdout, stderr and exit code.
func runBin(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return testbin.Run(t, exec.Command(testbin.Path(t, "pedos-dom0-update"), args...))
}

// A usage error is logged below the root the command line names, wherever
// the error comes on the line, and never below another one: the default
// root is a real host's /var/log.
func TestUsageErrorLoggedBelowTheNamedRoot(t *testing.T) {
	first, named := t.TempDir(), t.TempDir()
	stdout, stderr, code := runBin(t, "--json", "--root", first, "--bogus", "--root="+named)
	var rep struct {
		Exit    int    `json:"exit"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 2 || rep.Exit != 2 || !strings.Contains(rep.Message, "--bogus") {
		t.Fatalf("exit %d, report %+v (%v); stderr:\n%s", code, rep, err, stderr)
	}
	if log, err := os.ReadFile(filepath.Join(named, dom0.LogPath)); err != nil || !strings.Contains(string(log), "--bogus") {
		t.Errorf("the usage error is not in the named root's log: %v\n%s", err, log)
	}
	if _, err := os.Stat(filepath.Join(first, dom0.LogPath)); !os.IsNotExist(err) {
		t.Errorf("the usage error was logged below the first --root, which a later one replaced (%v)", err)
	}

	// A --root without a value names no root: nothing is logged, and the
	// run says so.
	_, stderr, code = runBin(t, "--root", first, "--bogus", "--root")
	if _, err := os.Stat(filepath.Join(first, dom0.LogPath)); code != 2 || !os.IsNotExist(err) ||
		!strings.Contains(stderr, "not in the update log: --root was given without an absolute directory") {
		t.Errorf("exit %d, log below the first root: %v; stderr:\n%s", code, err, stderr)
	}
	// A relative --root is no root of dom0's: a usage error, logged nowhere.
	work := t.TempDir()
	cmd := exec.Command(testbin.Path(t, "pedos-dom0-update"), "--root", "rel")
	cmd.Dir = work
	_, stderr, code = testbin.Run(t, cmd)
	if entries, _ := os.ReadDir(work); code != 2 || len(entries) != 0 || !strings.Contains(stderr, `--root needs an absolute directory, not "rel"`) {
		t.Errorf("--root rel: exit %d, %d entries made in the working directory; stderr:\n%s", code, len(entries), stderr)
	}
}

// A --root that does not exist is an error naming where dom0's rpm database
// should be, and nothing is made there.
func TestMissingRoot(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent")
	_, stderr, code := runBin(t, "--check-only", "--root", missing)
	if want := "no rpm database in " + filepath.Join(missing, "var/lib/rpm"); code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, want 1 saying %q; stderr:\n%s", code, want, stderr)
	}
	if _, err := os.Lstat(missing); !os.IsNotExist(err) {
		t.Errorf("%s was made (%v)", missing, err)
	}
}

// A closed terminal (SIGHUP) ends the run as Ctrl-C does: the session it
// started is cancelled, not left behind for the UpdateVM (C2), and the run
// says it was interrupted.
func TestHangupCancelsTheSession(t *testing.T) {
	// Under nohup (nohup make test) SIGHUP is ignored, and the program
	// started here would inherit that and rightly ignore it too: caught
	// here instead, it is back to its default in the program.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	c, err := benchrun.NewDom0Root(t.Context(), root, signer)
	if err != nil {
		t.Fatal(err)
	}
	// A qrexec-client whose download never ends; the sync goes through.
	client := filepath.Join(t.TempDir(), "qrexec-client")
	script := "#!/bin/sh\ncase \"$3\" in *--sync*) cat >/dev/null; exit 0 ;; esac\nexec sleep 60\n"
	files := map[string]string{
		client:                  script,
		c.Path(dom0.ConfigPath): "qrexec_client = " + client + "\n",
		c.Path(dom0.CachedRepoConfDir + "/PedOS-cached.repo"): "[pedos-dom0-cached]\nbaseurl=file:///var/lib/PedOS/updates\nenabled=1\ngpgcheck=1\n",
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(content)
		if err := errors.Join(err, f.Close()); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(testbin.Path(t, "pedos-dom0-update"), "--root", root, "-y")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	testbin.StopAtEnd(t, cmd) // with the stand-in it starts, should the test fail
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	session := c.Path(filepath.Join(dom0.StateDir, dom0.SessionFile))
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(session); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no session was started; stderr:\n%s", stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if _, statErr := os.Stat(session); cmd.ProcessState.ExitCode() != 1 || !os.IsNotExist(statErr) || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("after SIGHUP: %v, session file: %v; want exit 1, the session gone, and 'interrupted'; stderr:\n%s", err, statErr, stderr.String())
	}
}

// updates.conf's qrexec_client naming nothing that runs is found before
// anything starts, naming the setting (not at the first call, as exit 125).
func TestQrexecClientCheckedFirst(t *testing.T) {
	root := rootWithConfig(t, "qrexec_client = /nonexistent\n")
	_, stderr, code := runBin(t, "--root", root, "--check-only")
	if want := "/etc/pedos/updates.conf: qrexec_client /nonexistent cannot be run"; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, want 1 saying %q; stderr:\n%s", code, want, stderr)
	}
}

// An updates.conf that cannot be read names no UpdateVM: the report and the
// log say none rather than the default's name.
func TestConfigErrorNamesNoUpdateVM(t *testing.T) {
	root := rootWithConfig(t, "updatevm = $(evil)\n")
	stdout, stderr, code := runBin(t, "--root", root, "--json", "--check-only")
	var rep struct {
		UpdateVM *string `json:"updatevm"`
		Exit     int     `json:"exit"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 1 || rep.Exit != 1 || rep.UpdateVM == nil || *rep.UpdateVM != "" {
		t.Errorf("exit %d, report %s (%v); want exit 1, \"updatevm\": \"\"; stderr:\n%s", code, stdout, err, stderr)
	}
}

// rootWithConfig is a new dom0 root whose updates.conf holds text.
func rootWithConfig(t *testing.T, text string) string {
	t.Helper()
	root := t.TempDir()
	conf := filepath.Join(root, dom0.ConfigPath)
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}
