package dom0

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/atomicfile"
)

// LogPath is dom0's append-only update log, one JSON object a line.
const LogPath = "/var/log/pedos/updates.log"

// LogRecord is one line of the update log.
type LogRecord struct {
	Time    time.Time `json:"time"`
	Program string    `json:"program"`
	Session string    `json:"session,omitempty"`
	Event   string    `json:"event"`
	Detail  any       `json:"detail,omitempty"`
}

// AppendLog stamps rec with the current time and adds it to the update
// log. Each record is a single write(2) to an O_APPEND file, so concurrent
// writers never interleave within a line. A write that fails part way (a
// full disk) is undone, under an exclusive lock of the log, so that the
// log stays one JSON object a line for the tools that read it (jq).
func AppendLog(c Config, rec LogRecord) error {
	rec.Time = time.Now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	path := c.Path(LogPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := atomicfile.OpenRegular(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return errors.Join(err, f.Truncate(info.Size()))
	}
	return f.Close()
}
