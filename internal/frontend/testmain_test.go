package frontend

import (
	"os"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }
