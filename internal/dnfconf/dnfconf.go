// Package dnfconf reads dnf's repository configuration (.repo files and
// dnf.conf) as dnf 4.14 reads it: which repositories are enabled after the
// user's --enablerepo/--disablerepo, and which package globs each one
// excludes or includes (docs/freshness.md step 6).
//
// The front end resolves dom0's network repositories with it when it
// starts an update session, and the receive service judges a delivery
// against the session's copy (dom0.Session.Repos): the service that reads
// the UpdateVM's bytes need not parse configuration files. The UpdateVM
// reads the copy of the same files that dom0 shipped to it the same way,
// so both sides count the same repositories.
package dnfconf

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"pedos.dev/updates/internal/repometa"
)

// NetworkReposDir holds dom0's network repository definitions: dom0 never
// uses them itself, it ships them to the UpdateVM (overview.md step 2), and
// reads them to know which repositories a delivery must account for.
const NetworkReposDir = "/etc/yum.repos.d"

// DNFConf is dnf's configuration file: dom0's own dnf reads it, and dom0
// ships it to the UpdateVM with the repository definitions.
const DNFConf = "/etc/dnf/dnf.conf"

// RepoSwitch is one --enablerepo (Enable) or --disablerepo glob. dnf applies them in the
// order of its command line, so they are kept in that order: `--disablerepo='*'
// --enablerepo=R` leaves R enabled, and the freshness checks must see the same.
type RepoSwitch struct {
	Enable bool
	Glob   string
}

// Option is the switch as a dnf option.
func (r RepoSwitch) Option() string {
	if r.Enable {
		return "--enablerepo=" + r.Glob
	}
	return "--disablerepo=" + r.Glob
}

// ReadNetworkRepos reads the network repository definitions and dnf.conf
// below root, as the UpdateVM's dnf will read them with switches. The
// warnings name what dnf skips: a .repo file it cannot parse, a repository
// id it refuses.
func ReadNetworkRepos(root string, switches []RepoSwitch) (repometa.NetworkRepos, []string, error) {
	var out repometa.NetworkRepos
	files, err := RepoFiles(filepath.Join(root, NetworkReposDir))
	if err != nil {
		return out, nil, err
	}
	enabled := map[string]bool{}
	excludes, includes, disabled := map[string][]string{}, map[string][]string{}, map[string][]string{}
	priorities := map[string]string{} // as written, continuation lines included
	dnfConf := filepath.Join(root, DNFConf)
	var warnings []string
	for _, file := range append([]string{dnfConf}, files...) {
		skipped, err := ReadRepoFile(file, file == dnfConf, enabled, RepoLists{excludes, includes, disabled, priorities})
		if err != nil && !os.IsNotExist(err) {
			return out, nil, err
		}
		warnings = append(warnings, skipped...)
	}
	// dnf.conf's disable_excludes turns the lists off: all, main's, or a
	// repository's (dnf's base.py, _setup_excludes_includes).
	for _, off := range disabled["main"] {
		for id := range enabled {
			if off == "all" || off == id {
				excludes[id], includes[id] = nil, nil
			}
		}
		if off == "all" || off == "main" {
			excludes["main"], includes["main"] = nil, nil
		}
	}
	out.Excludes, out.RepoExcludes = excludes["main"], map[string][]string{}
	out.Includes, out.RepoIncludes = includes["main"], map[string][]string{}
	out.RepoPriorities = map[string]int{}
	for _, sw := range switches {
		for id := range enabled {
			if matchesAny(id, []string{sw.Glob}) {
				enabled[id] = sw.Enable
			}
		}
	}
	for id, on := range enabled {
		if on {
			out.Enabled = append(out.Enabled, id)
			out.RepoExcludes[id], out.RepoIncludes[id] = excludes[id], includes[id]
			if raw, ok := priorities[id]; ok {
				if p, ok := dnfPriority(raw); ok {
					out.RepoPriorities[id] = p
				} else {
					warnings = append(warnings, fmt.Sprintf("repository %s: priority %q is no number dnf reads: it keeps 99, with a warning", id, raw))
				}
			}
		}
	}
	sort.Strings(out.Enabled)
	return out, warnings, nil
}

// dnfPriority reads a priority as libdnf does, a C++ stream's >> into an
// int (measured with dnf 4.14): blanks (newlines too) skipped, a sign and
// the digits that follow, the rest ignored ("1 # first" is 1, "0x10" is
// 0); no digits, or a number outside 32 bits, is no value (dnf warns and
// keeps 99).
func dnfPriority(raw string) (int, bool) {
	s := strings.TrimLeft(raw, " \t\n\r\v\f")
	end := 0
	if end < len(s) && (s[end] == '+' || s[end] == '-') {
		end++
	}
	digits := end
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(s[:end], 10, 32)
	if n == math.MinInt32 {
		// libsolv ranks a repository by the negated priority, which for
		// this one value stays the lowest of all: last, not first
		// (measured with dnf 4.14).
		return math.MaxInt32 + 1, err == nil
	}
	return int(n), end > digits && err == nil
}

// RepoFiles lists the .repo files of dir that count (ShippedFile), in the
// order dnf reads them: sorted by name without ".repo" (a.repo before
// a-b.repo), which decides whose definition of a repository id counts.
func RepoFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if ShippedFile(e) && strings.HasSuffix(e.Name(), ".repo") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	slices.SortFunc(files, func(a, b string) int {
		return strings.Compare(strings.TrimSuffix(a, ".repo"), strings.TrimSuffix(b, ".repo"))
	})
	return files, nil
}

// ShippedFile says whether a file of dom0's dnf configuration directories is
// shipped to the UpdateVM, and so counts here: a regular file whose name does
// not start with a dot (dnf skips those; a link could point anywhere). Both
// sides then judge the same set of repositories.
func ShippedFile(e fs.DirEntry) bool {
	return e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".")
}

// RepoLists are the glob lists and priorities ReadRepoFile records, by
// section ("main" for dnf.conf's [main]); the zero value records none.
type RepoLists struct {
	excludes, includes, disableExcludes map[string][]string
	priorities                          map[string]string
}

// ReadRepoFile records each section of a .repo file (or of dnf.conf, with
// dnfConf set), whether it is enabled (dnf's default is enabled) and its
// exclude and include globs, read as dnf reads them: a repository defined
// in an earlier file keeps that definition, [main] counts in dnf.conf
// only, a later line of an option replaces an earlier one, and an indented
// line continues the option before it. enabled alone may be wanted.
//
// What dnf skips with a warning is skipped here too and named in skipped:
// a .repo file with a line that is no option, section, comment or
// continuation (the whole file; an indented line after an empty line, a
// comment or a section continues nothing: libdnf's "Illegal continuation
// line"; readLine has the rules), and a section whose id holds other
// characters than dnf allows (that repository). In dnf.conf such a line
// is an error: dnf does not run with it.
func ReadRepoFile(file string, dnfConf bool, enabled map[string]bool, lists RepoLists) (skipped []string, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	continues := false // whether an indented line would continue an option
	for i, raw := range lines {
		bad := ""
		switch kind, line := ReadLine(raw); {
		case kind == EndLine || kind == SectionLine:
			continues = false
		case kind == ContinuationLine && !continues:
			bad = "an indented line that continues no option"
		case kind == OptionLine:
			if key, _, isOption := strings.Cut(line, "="); !isOption || trimBlanks(key) == "" {
				bad = "not an option (NAME=VALUE), a section or a comment"
			}
			continues = true
		}
		if bad != "" && dnfConf {
			return nil, fmt.Errorf("%s:%d: %s: dnf refuses the file", file, i+1, bad)
		}
		if bad != "" {
			return []string{fmt.Sprintf("%s:%d: %s: dnf skips the whole file, and its repositories are not used", file, i+1, bad)}, nil
		}
	}
	section, skip := "", true
	ours := map[string]bool{}     // sections of this file: repeated, they merge
	var key string                // the option the last line set
	var globs map[string][]string // the same, when it lists globs
	for _, raw := range lines {
		kind, line := ReadLine(raw)
		switch {
		case kind == SectionLine:
			section, key, globs = line[1:len(line)-1], "", nil
			_, defined := enabled[section]
			skip = section == "main" && !dnfConf || section != "main" && defined && !ours[section]
			if section != "main" && !validRepoID.MatchString(section) {
				// Quoted: the id has failed the check, and may hold an ESC.
				skipped = append(skipped, fmt.Sprintf("%s: repository id %q: dnf skips this repository: an id holds only letters, digits and -_.:", file, section))
				skip = true
			}
			if !skip && section != "main" && !ours[section] {
				enabled[section], ours[section] = true, true
			}
		case skip || kind == BlankLine || kind == EndLine:
		case kind == ContinuationLine:
			if globs != nil {
				globs[section] = append(globs[section], globList(line)...)
			}
			// "enabled=0" continued is no boolean to dnf: it warns and
			// keeps its default, enabled.
			if key == "enabled" && section != "main" {
				enabled[section] = true
			}
			if key == "priority" && lists.priorities != nil {
				lists.priorities[section] += "\n" + line
			}
		default:
			var value string
			key, value, _ = strings.Cut(line, "=")
			key, value, globs = trimBlanks(key), trimBlanks(value), nil
			switch {
			case key == "enabled" && section != "main":
				v := strings.ToLower(value)
				enabled[section] = v != "0" && v != "false" && v != "no" && v != "off"
			case key == "excludepkgs" || key == "exclude":
				globs = lists.excludes
			case key == "includepkgs":
				globs = lists.includes
			case key == "disable_excludes" && section == "main":
				globs = lists.disableExcludes
			case key == "priority" && section != "main" && lists.priorities != nil:
				lists.priorities[section] = value
			}
			if globs != nil {
				globs[section] = globList(value)
			}
		}
	}
	return skipped, nil
}

// LineKind is what dnf's parser (libdnf's, measured with dnf 4.14) makes of
// a line of a .repo file or dnf.conf; whoever reads or rewrites those files
// line by line (the UpdateVM's gpgkey rewrite too) asks ReadLine.
type LineKind int

const (
	BlankLine        LineKind = iota // spaces and tabs only: changes nothing
	EndLine                          // empty, or a comment not indented: nothing continues after it
	SectionLine                      // [ID], indented or not
	ContinuationLine                 // indented: more of the option before it, a # or ; too
	OptionLine                       // NAME=VALUE, or a line dnf cannot parse
)

// ReadLine says what raw is, and gives it without its blanks around.
func ReadLine(raw string) (LineKind, string) {
	line := trimBlanks(raw)
	switch {
	case raw == "":
		return EndLine, line
	case line == "":
		return BlankLine, line
	case isSection(line):
		return SectionLine, line
	case raw[0] == ' ' || raw[0] == '\t':
		return ContinuationLine, line
	case line[0] == '#' || line[0] == ';':
		return EndLine, line
	}
	return OptionLine, line
}

// trimBlanks trims what dnf trims: spaces, tabs and a CR (a \v or \f stays,
// and makes a name dnf does not know).
func trimBlanks(s string) string { return strings.Trim(s, " \t\r") }

// isSection says whether a trimmed line is a section header; one that only
// begins with "[" is a line dnf cannot parse.
func isSection(line string) bool { return strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") }

// validRepoID is what dnf (libdnf) accepts as a repository id.
var validRepoID = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// globList splits an option's value as dnf does: on commas and blanks.
func globList(value string) []string {
	return strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// pythonClasses writes a glob's classes as Python's fnmatch, which dnf
// matches repository ids with, reads them: "[!x]" negates, "[^x]" does not.
var pythonClasses = strings.NewReplacer("[!", "[^", "[^", `[\^`)

func matchesAny(id string, globs []string) bool {
	for _, g := range globs {
		for _, part := range strings.Split(g, ",") {
			if ok, _ := path.Match(pythonClasses.Replace(part), id); ok {
				return true
			}
		}
	}
	return false
}
