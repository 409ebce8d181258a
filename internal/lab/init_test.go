package lab

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The mirror's access log has one line per request whatever path the
// UpdateVM (possibly the attacker's) asks for: an escaped newline in the
// path stays escaped, so no request can write a line that looks like
// another request's.
func TestMirrorAccessLogOneLinePerRequest(t *testing.T) {
	var accessLog bytes.Buffer
	handler := loggedHandler(http.NotFoundHandler(), &accessLog)
	forged := "/x%0A2001-01-01T00:00:00Z%20GET%20/repo/current/packages/evil.rpm%20200%201"
	handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", forged, nil))
	lines := strings.Split(strings.TrimSuffix(accessLog.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], " GET /x%0A") || !strings.HasSuffix(lines[0], " 404 19") {
		t.Errorf("access log for one request:\n%s", accessLog.String())
	}
}
