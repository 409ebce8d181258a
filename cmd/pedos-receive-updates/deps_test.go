package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// dom0's programs link what the README's "Trusted computing base" says and
// no more: the four third-party modules, and none of the code of the other
// side. The two programs that read the UpdateVM's bytes link neither the
// front end's dnf and configuration code nor qrexec; the front end links
// none of the UpdateVM's code (its decompressors, vsock), only the shared
// vocabulary of internal/updatecall. The UpdateVM's command links none of
// dom0's receive pipeline.
func TestProgramDependencies(t *testing.T) {
	allowedModules := []string{"github.com/ProtonMail/go-crypto", "github.com/cloudflare/circl", "golang.org/x/crypto", "golang.org/x/sys"}
	receiveSide := []string{"internal/frontend", "internal/dnfconf", "internal/dnftool", "internal/updatevm", "internal/qrexec", "internal/qrexec/policy", "internal/lab"}
	for _, tc := range []struct {
		program   string
		modules   []string // nil: any
		forbidden []string
	}{
		{"pedos-receive-updates", allowedModules, receiveSide},
		{"qfile-dom0-unpacker", allowedModules, receiveSide},
		{"pedos-dom0-update", allowedModules, []string{"internal/updatevm", "internal/qrexec", "internal/lab"}},
		{"pedos-download-dom0-updates", nil, []string{"internal/dom0", "internal/qfile", "internal/sandbox", "internal/frontend"}},
	} {
		// go test puts its own go first in PATH.
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{if not .Main}}{{.Path}}{{end}}{{end}}", "pedos.dev/updates/cmd/"+tc.program).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", tc.program, err)
		}
		reported := map[string]bool{}
		for line := range strings.Lines(string(out)) {
			pkg, module, _ := strings.Cut(strings.TrimSpace(line), " ")
			if module != "" && tc.modules != nil && !slices.Contains(tc.modules, module) && !reported[module] {
				reported[module] = true
				t.Errorf("%s links module %s (%s), which is not one of %v", tc.program, module, pkg, tc.modules)
			}
			if ours, ok := strings.CutPrefix(pkg, "pedos.dev/updates/"); ok && slices.Contains(tc.forbidden, ours) {
				t.Errorf("%s links %s", tc.program, pkg)
			}
		}
	}
}
