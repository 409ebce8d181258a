package dist

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/dom0"
)

// TestLogrotateRuleRotatesTheUpdateLog runs the real logrotate on the shipped
// rule, pointed at a log dom0.AppendLog writes under a temporary root: a small
// log stays (monthly), one past 16 MiB is rotated and compressed with every
// record in it, as updates.log.1.gz also under a global dateext, and the
// next record goes to the new log with the mode AppendLog gives it.
func TestLogrotateRuleRotatesTheUpdateLog(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the rule's create sets root as the owner; run as root")
	}
	logrotate, err := exec.LookPath("logrotate")
	if err != nil {
		logrotate = "/usr/sbin/logrotate" // root's PATH may lack sbin
	}
	rule, err := Dom0.ReadFile("dom0/etc/logrotate.d/pedos-updates")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rule, []byte(dom0.LogPath+" {")) {
		t.Fatalf("the rule does not name %s:\n%s", dom0.LogPath, rule)
	}
	dir := t.TempDir()
	c := dom0.Config{Root: filepath.Join(dir, "root")}
	log := c.Path(dom0.LogPath)
	conf := filepath.Join(dir, "pedos-updates")
	// Global settings first, as logrotate.conf gives them: Fedora's dateext
	// must not rename the rotated logs.
	global := []byte("dateext\n")
	if err := os.WriteFile(conf, append(global, bytes.ReplaceAll(rule, []byte(dom0.LogPath), []byte(log))...), 0o644); err != nil {
		t.Fatal(err)
	}
	rotate := func() {
		t.Helper()
		out, err := exec.Command(logrotate, "--state", filepath.Join(dir, "state"), conf).CombinedOutput()
		if err != nil {
			t.Fatalf("logrotate: %v\n%s", err, out)
		}
	}
	appendRecord := func(event string, detail any) {
		t.Helper()
		if err := dom0.AppendLog(c, dom0.LogRecord{Program: "test", Event: event, Detail: detail}); err != nil {
			t.Fatal(err)
		}
	}

	appendRecord("first", nil)
	rotate()
	if b, err := os.ReadFile(log); err != nil || !strings.Contains(string(b), `"first"`) {
		t.Fatalf("a small log was rotated within its month: %q, %v", b, err)
	}

	appendRecord("large", strings.Repeat("x", 17<<20))
	rotate()
	if b, err := os.ReadFile(log); err != nil || len(b) != 0 {
		t.Fatalf("a log past 16 MiB was not rotated: %d bytes left, %v", len(b), err)
	}
	f, err := os.Open(log + ".1.gz")
	if err != nil {
		t.Fatalf("no rotated, compressed log: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	old, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(old), "\n"); lines != 2 || !strings.Contains(string(old), `"first"`) {
		t.Errorf("the rotated log holds %d lines, want both records", lines)
	}

	appendRecord("after", nil)
	info, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o640 {
		t.Errorf("the new log has mode %v, want 0640 as AppendLog creates it", info.Mode().Perm())
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), `"after"`) {
		t.Errorf("the record after the rotation is not in the new log: %q", b)
	}
}
