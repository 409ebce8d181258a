package frontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"pedos.dev/updates/internal/dom0"
)

// ErrNoResult means no delivery finished for the session: the UpdateVM
// never called, or the service died before it could answer.
var ErrNoResult = errors.New("no delivery arrived for this update session")

// ReadResult returns the result of the given session.
func ReadResult(c dom0.Config, session string) (dom0.Result, error) {
	var r dom0.Result
	b, err := os.ReadFile(filepath.Join(c.Path(dom0.StateDir), dom0.ResultFile))
	if errors.Is(err, os.ErrNotExist) {
		return r, ErrNoResult
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("reading the receive result: %w", err)
	}
	if r.Session != session {
		return r, ErrNoResult
	}
	return r, nil
}
