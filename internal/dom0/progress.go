package dom0

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"pedos.dev/updates/internal/atomicfile"
)

// Progress is how far the receive service is with a delivery, for the
// person waiting at pedos-dom0-update (the service's own stderr goes to
// dom0's log, not to them).
type Progress struct {
	Session string `json:"session"`
	Done    int    `json:"done"` // packages verified so far
	// Total is the number of packages received so far: the delivery's
	// total once the stream has ended.
	Total int `json:"total"`
}

// ProgressFile is in StateDir.
const ProgressFile = "progress.json"

// writeProgress records p, replacing the file by a rename so that a reader
// never sees half of it; it is not synced: losing it costs a progress line.
// Its callers hold the results' lock, so one temporary name does: a service
// killed between the write and the rename leaves that one file, which the
// next delivery's first write replaces.
func writeProgress(c Config, p Progress) {
	b, err := json.Marshal(p)
	if err != nil {
		return
	}
	path := filepath.Join(c.Path(StateDir), ProgressFile)
	tmp := path + ".tmp"
	// Not os.WriteFile: a FIFO left at the temporary name would hold the
	// receive for good.
	f, err := atomicfile.OpenRegular(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, err = f.Write(b)
	if errors.Join(err, f.Close()) == nil && os.Rename(tmp, path) != nil {
		os.Remove(tmp)
	}
}
