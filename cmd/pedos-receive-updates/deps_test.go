package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// dom0's programs link what the README's "Trusted computing base" says and
// no more. The two that read the UpdateVM's bytes link exactly the packages
// it lists and the four third-party modules. The front end links the same
// four modules and none of the UpdateVM's code (its decompressors, vsock,
// the qfile sender), only the shared vocabulary of internal/updatecall. The
// UpdateVM's command links none of dom0's receive pipeline.
func TestProgramDependencies(t *testing.T) {
	allowedModules := []string{"github.com/ProtonMail/go-crypto", "github.com/cloudflare/circl", "golang.org/x/crypto", "golang.org/x/sys"}
	tcb := []string{"internal/dom0", "internal/qfile", "internal/sandbox", "internal/rpm", "internal/repometa", "internal/rpmver", "internal/pkgtool", "internal/atomicfile", "internal/release"}
	for _, tc := range []struct {
		program   string
		modules   []string // nil: any
		ours      []string // nil: any but forbidden; else exactly these (and the program)
		forbidden []string // with their subpackages
	}{
		{"pedos-receive-updates", allowedModules, tcb, nil},
		{"qfile-dom0-unpacker", allowedModules, tcb, nil},
		{"pedos-dom0-update", allowedModules, nil, []string{"internal/updatevm", "internal/qfile/qfilesend", "internal/lab", "internal/attack", "internal/benchrun", "internal/testrepo"}},
		{"pedos-download-dom0-updates", nil, nil, []string{"internal/dom0", "internal/qfile", "internal/sandbox", "internal/frontend"}},
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
			ours, ok := strings.CutPrefix(pkg, "pedos.dev/updates/")
			if !ok || ours == "cmd/"+tc.program {
				continue
			}
			if tc.ours != nil && !slices.Contains(tc.ours, ours) {
				t.Errorf("%s links %s, which is not one of the packages the README counts in the TCB", tc.program, pkg)
			}
			if slices.ContainsFunc(tc.forbidden, func(f string) bool { return ours == f || strings.HasPrefix(ours, f+"/") }) {
				t.Errorf("%s links %s", tc.program, pkg)
			}
		}
	}
}
