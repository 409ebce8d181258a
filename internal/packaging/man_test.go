package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

// longOption is an option as the programs' usage texts write it.
var longOption = regexp.MustCompile(`--[a-z][a-z0-9-]*`)

// definedOptions are the long options a usage text defines: those on lines
// that start with an option, left of the description column (two or more
// spaces). Options inside examples and quoted commands are not definitions.
func definedOptions(usage string) []string {
	var options []string
	for _, line := range strings.Split(usage, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-") {
			continue
		}
		if i := strings.Index(line, "  "); i >= 0 {
			line = line[:i]
		}
		options = append(options, longOption.FindAllString(line, -1)...)
	}
	return options
}

// Every command has a man page. For the packaged commands the page also
// names every option the command's --help defines, so the two cannot drift
// apart unnoticed; pedos-lab and pedos-bench are development tools.
func TestManPages(t *testing.T) {
	packaged := map[string]bool{}
	for _, e := range append(dom0Entries, vmEntries...) {
		if name, ok := strings.CutPrefix(e.path, "/usr/lib/pedos/bin/"); ok {
			packaged[name] = true
		}
	}
	commands, err := os.ReadDir(filepath.Join(repoRoot(), "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		name := c.Name()
		t.Run(name, func(t *testing.T) {
			pages, _ := filepath.Glob(filepath.Join(repoRoot(), "docs", "man", name+".[18].md"))
			if len(pages) != 1 {
				t.Fatalf("want one docs/man/%s.1.md or .8.md, found %v", name, pages)
			}
			page := readFile(t, pages[0])
			section := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(pages[0]), name+"."), ".md")
			if title := "% " + strings.ToUpper(name) + " " + section + " "; !strings.HasPrefix(page, title) {
				t.Errorf("%s does not start with the title line %q", pages[0], title)
			}
			if !packaged[name] {
				return
			}
			// --help prints the usage on stdout with exit 0 (internal/cmdline's
			// convention; TestHelpAndUsageErrors checks it).
			help, _ := exec.Command(testbin.Path(t, name), "--help").CombinedOutput()
			for _, option := range definedOptions(string(help)) {
				if !strings.Contains(page, "**"+option) {
					t.Errorf("%s --help names %s, which %s does not describe", name, option, filepath.Base(pages[0]))
				}
			}
		})
	}
}
