// Package programs finds the project's programs that work together: they
// are installed side by side (/usr/lib/pedos/bin, or bin/ in a build).
package programs

import (
	"os"
	"path/filepath"
)

// Find returns the path of the named program next to the running one, or
// the bare name, for a PATH lookup, when there is none.
func Find(name string) string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return name
}
