package dom0

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// Progress is how far the receive service is with a delivery, for the
// person waiting at pedos-dom0-update (the service's own stderr goes to
// dom0's log, not to them).
type Progress struct {
	Session string `json:"session"`
	Done    int    `json:"done"`  // packages verified so far
	Total   int    `json:"total"` // packages in the delivery
}

const progressFile = "progress.json"

// writeProgress records p; losing it costs only a progress line.
func writeProgress(c Config, p Progress) {
	_ = writeJSONAtomic(filepath.Join(c.Path(StateDir), progressFile), p)
}

// ReadProgress returns the progress of the session, if any was written.
func ReadProgress(c Config, session string) (Progress, bool) {
	var p Progress
	b, err := os.ReadFile(filepath.Join(c.Path(StateDir), progressFile))
	if err != nil || json.Unmarshal(b, &p) != nil || p.Session != session {
		return p, false
	}
	return p, true
}
