package dom0_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/testbin"
)

// A record that does not fit (a full disk) is not left half written: the
// log stays one JSON object a line, which jq and the docs' queries read, and
// the next record after space is freed is a line of its own.
func TestAppendLogUndoesAPartialRecord(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	logDir := filepath.Dir(c.Path(dom0.LogPath))
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		t.Fatal(err)
	}
	testbin.Tmpfs(t, logDir, "size=64k")
	if err := dom0.AppendLog(c, dom0.LogRecord{Program: "test", Event: "first"}); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(logDir, "filler")
	if err := os.WriteFile(filler, make([]byte, 60<<10), 0o600); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	big := dom0.LogRecord{Program: "test", Event: "too big", Detail: strings.Repeat("x", 16<<10)}
	if err := dom0.AppendLog(c, big); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a record on a full disk: %v, want ENOSPC", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := dom0.AppendLog(c, dom0.LogRecord{Program: "test", Event: "after"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(c.Path(dom0.LogPath))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for line := range bytes.Lines(data) {
		var rec dom0.LogRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %.200q is no JSON object: %v", line, err)
		}
		events = append(events, rec.Event)
	}
	if strings.Join(events, ",") != "first,after" {
		t.Errorf("the log holds %q, want first and after", events)
	}
}

// A FIFO at the log's path is refused at once, not waited on for ever.
func TestAppendLogRefusesAFIFO(t *testing.T) {
	c := dom0.DefaultConfig(t.TempDir())
	path := c.Path(dom0.LogPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := dom0.AppendLog(c, dom0.LogRecord{Program: "test", Event: "x"}); err == nil || !strings.Contains(err.Error(), "not a regular file: a FIFO") {
		t.Errorf("AppendLog to a FIFO: %v", err)
	}
}

// A record is written under an exclusive lock of the log, the lock under
// which a record that did not fit is undone (operations.md: "one JSON object
// per line"): while another writer holds a lock on the log, shared or
// exclusive, AppendLog writes nothing, so that its truncation back to the
// size it saw can never cut that writer's record; once the lock is released
// the record is written.
func TestAppendLogWaitsForTheLogsLock(t *testing.T) {
	for _, how := range []int{syscall.LOCK_EX, syscall.LOCK_SH} {
		c := dom0.DefaultConfig(t.TempDir())
		path := c.Path(dom0.LogPath)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		held, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(held.Fd()), how); err != nil {
			t.Fatal(err)
		}
		appended := make(chan error, 1)
		go func() { appended <- dom0.AppendLog(c, dom0.LogRecord{Program: "test", Event: "waited"}) }()
		var appendErr error
		returned := false
		select {
		case appendErr = <-appended:
			returned = true
			t.Errorf("lock %d held by another: AppendLog returned (%v) without waiting for it", how, appendErr)
		case <-time.After(200 * time.Millisecond):
		}
		if info, err := os.Stat(path); err != nil || info.Size() != 0 {
			t.Errorf("lock %d held by another: the log was written (%v)", how, err)
		}
		held.Close() // releases the lock
		if !returned {
			appendErr = <-appended
		}
		if appendErr != nil {
			t.Fatal(appendErr)
		}
		if data, err := os.ReadFile(path); err != nil || !bytes.Contains(data, []byte(`"event":"waited"`)) {
			t.Errorf("after the lock was released: %q, %v", data, err)
		}
	}
}
