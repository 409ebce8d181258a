package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"pedos.dev/updates/internal/filekind"
)

// Action is what a matching rule decides.
type Action int

// The actions of a rule. Ask has no one to ask in this implementation and
// is treated as Deny (spec/qrexec.md "Policy").
const (
	Deny Action = iota
	Allow
	Ask
)

// Policy is the ordered list of rules from every policy file.
type Policy struct {
	rules []rule
}

type rule struct {
	service   string // a service name or "*"
	argument  string // "*" or "+ARG"
	source    token
	target    token
	action    Action
	redirect  token // target=; kind noToken if absent
	user      string
	notify    bool
	autostart bool
	where     string // FILE:LINE, for logs
}

// maxIncludeDepth bounds !include nesting, which a cycle through a symbolic
// link or another spelling of a path would otherwise make endless.
const maxIncludeDepth = 16

// DefaultDir and DefaultDomainsFile are where dom0's qrexec reads its
// policy and its domains unless told otherwise (qrexec.md).
const (
	DefaultDir         = "/etc/pedos/policy.d"
	DefaultDomainsFile = "/etc/pedos/domains.conf"
)

// Load reads every policy file in dir, in byte order of their names, with
// their includes. Any error anywhere fails the whole policy, so a caller
// must deny every call when Load fails (C5).
func Load(dir string) (*Policy, error) {
	l := loader{readFile: readConfigFile, readDir: policyFiles, base: dir}
	if err := l.includeDir(dir); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &Policy{rules: l.rules}, nil
}

type loader struct {
	readFile func(path string) ([]byte, error)
	readDir  func(dir string) ([]string, error)
	base     string // the policy directory: relative includes start there
	rules    []rule
	chain    []string // the files being read, each included by the one before
}

// maxConfigFileBytes bounds one policy or domains file.
const maxConfigFileBytes = 16 << 20

// readConfigFile reads a policy or domains file, which must be a regular
// file: a FIFO would hold every call at its open (the open does not wait,
// to find out), and a device such as /dev/zero would never end.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file but %s", path, filekind.Of(info.Mode()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err == nil && len(data) > maxConfigFileBytes {
		err = fmt.Errorf("%s: larger than %d bytes", path, maxConfigFileBytes)
	}
	return data, err
}

// policyFiles lists the policy files of dir in byte order: names of
// [0-9a-z_.-] ending in ".policy". Names starting with '.' or not ending in
// ".policy" (editor backups, READMEs) are skipped; any other name ending in
// ".policy" is an error, so a misnamed file is never silently ignored.
func policyFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name, byte order
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, e := range entries {
		name := e.Name()
		if name[0] == '.' || !strings.HasSuffix(name, ".policy") {
			continue
		}
		if strings.ToLower(name) != name || !onlyChars(name, "_.-", 1) {
			// Quoted: the name has failed the check, and may hold an ESC
			// or a newline.
			return nil, fmt.Errorf("%q: invalid policy file name (allowed: [0-9a-z_.-])", filepath.Join(dir, name))
		}
		paths = append(paths, filepath.Join(dir, name))
	}
	return paths, nil
}

func (l *loader) includeDir(dir string) error {
	paths, err := l.readDir(dir)
	if err != nil {
		return err
	}
	for _, path := range paths {
		if err := l.includeFile(path); err != nil {
			return err
		}
	}
	return nil
}

// includeFile reads the file at path, unless that would close an include
// cycle or nest too deep.
func (l *loader) includeFile(path string) error {
	path = filepath.Clean(path)
	if i := slices.Index(l.chain, path); i >= 0 {
		through := ""
		if rest := l.chain[i+1:]; len(rest) > 0 {
			through = " (through " + strings.Join(rest, ", ") + ")"
		}
		return &nestingError{msg: fmt.Sprintf("include cycle: %s includes itself%s", path, through)}
	}
	if len(l.chain) > maxIncludeDepth {
		return &nestingError{msg: fmt.Sprintf("including %s nests deeper than %d", path, maxIncludeDepth)}
	}
	data, err := l.readFile(path)
	if err != nil {
		return err
	}
	l.chain = append(l.chain, path)
	defer func() { l.chain = l.chain[:len(l.chain)-1] }()
	return l.parse(path, data)
}

// nestingError is an include cycle or nesting too deep. It is reported
// with the file and line of the directive that closed the cycle or went
// too deep, and not wrapped again on the way out: the files that included
// it are in its message already, and naming each again would repeat them.
type nestingError struct {
	msg     string
	located bool // msg starts with the directive's file:line
}

func (e *nestingError) Error() string { return e.msg }

func (l *loader) parse(file string, data []byte) error {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r") // CRLF
		if err := checkLine(line); err != nil {
			return fmt.Errorf("%s:%d: %w", file, i+1, err)
		}
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		var err error
		if strings.HasPrefix(fields[0], "!") {
			err = l.directive(file, fields)
		} else {
			var r rule
			r, err = parseRule(fields)
			r.where = fmt.Sprintf("%s:%d", file, i+1)
			l.rules = append(l.rules, r)
		}
		if nesting, ok := errors.AsType[*nestingError](err); ok {
			if !nesting.located {
				nesting.msg, nesting.located = fmt.Sprintf("%s:%d: %s", file, i+1, nesting.msg), true
			}
			return err
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", file, i+1, err)
		}
	}
	return nil
}

// checkLine refuses a line of a policy file or of the domains
// configuration that would not read as it acts, comments too: a carriage
// return, vertical tab or line separator makes a terminal or an editor
// show a comment as a rule, or a rule as something else; a no-break space
// shows no break where fields split; an invisible byte-order mark (an
// editor's, at a file's start) keeps a '#' from starting a comment.
func checkLine(line string) error {
	if !utf8.ValidString(line) {
		// A stray byte such as 0x9b is a control sequence's start on a
		// terminal that reads 8-bit codes.
		return errors.New("not valid UTF-8")
	}
	if at := strings.IndexFunc(line, misleading); at >= 0 {
		r, _ := utf8.DecodeRuneInString(line[at:])
		if r == byteOrderMark {
			return errors.New("character U+FEFF, a byte-order mark, is not allowed (save the file as UTF-8 without one)")
		}
		return fmt.Errorf("character %U is not allowed (only spaces and tabs separate fields, and no control character may hide what a line says)", r)
	}
	return nil
}

const byteOrderMark = 0xfeff

// misleading reports a character a line may not hold: a control character
// but the tab, whitespace beyond ASCII, or a byte-order mark.
func misleading(r rune) bool {
	return r < ' ' && r != '\t' || r == 0x7f || r == byteOrderMark || r > unicode.MaxASCII && (unicode.IsSpace(r) || unicode.IsControl(r))
}

// directive handles !include FILE and !include-dir DIR; relative paths are
// relative to the policy directory, as in Qubes, wherever the including
// file is. An error in the included file names the directive, then its own
// file and line.
func (l *loader) directive(file string, fields []string) error {
	if fields[0] != "!include" && fields[0] != "!include-dir" {
		return fmt.Errorf("unknown directive %s (only !include and !include-dir are known)", Quoted(fields[0]))
	}
	if len(fields) != 2 {
		return fmt.Errorf("%s needs exactly one path", fields[0])
	}
	path := fields[1]
	if !filepath.IsAbs(path) {
		path = filepath.Join(l.base, path)
	}
	var err error
	if fields[0] == "!include" {
		err = l.includeFile(path)
	} else {
		err = l.includeDir(path)
	}
	if _, ok := errors.AsType[*nestingError](err); !ok && err != nil {
		err = fmt.Errorf("%s %s: %w", fields[0], fields[1], err)
	}
	return err
}

// parseRule parses SERVICE ARGUMENT SOURCE TARGET ACTION [PARAM=VALUE...].
func parseRule(fields []string) (rule, error) {
	if len(fields) < 5 {
		return rule{}, fmt.Errorf("want SERVICE ARGUMENT SOURCE TARGET ACTION [PARAM=VALUE...], got %d field(s)", len(fields))
	}
	r := rule{service: fields[0], argument: fields[1]}
	if r.service != "*" && !ValidService(r.service) {
		return r, fmt.Errorf("invalid service name %s", Quoted(r.service))
	}
	switch {
	case r.service == "*" && r.argument != "*":
		return r, fmt.Errorf("service * needs argument *, got %s", Quoted(r.argument))
	case r.argument != "*" && (!strings.HasPrefix(r.argument, "+") || !ValidArgument(r.argument[1:])):
		return r, fmt.Errorf("invalid argument %s (want * or +ARG)", Quoted(r.argument))
	}
	var err error
	if r.source, err = parseToken(fields[2], sourceTokens); err != nil {
		return r, fmt.Errorf("source: %w", err)
	}
	if r.target, err = parseToken(fields[3], targetTokens); err != nil {
		return r, fmt.Errorf("target: %w", err)
	}
	switch fields[4] {
	case "allow":
		r.action = Allow
	case "deny":
		r.action = Deny
	case "ask":
		r.action = Ask
	default:
		return r, fmt.Errorf("unknown action %s (want allow, deny or ask)", Quoted(fields[4]))
	}
	if err := r.setParams(fields[5:]); err != nil {
		return r, err
	}
	// As in Qubes, a syntax error: such a rule could never allow a call.
	if r.action == Allow && r.target.kind == defaultToken && r.redirect.kind == noToken {
		return r, errors.New("allow for target @default needs target=")
	}
	return r, nil
}

// setParams applies PARAM=VALUE words; which params an action takes follows
// spec/qrexec.md "Policy". Unknown or repeated params are errors.
func (r *rule) setParams(params []string) error {
	allowed := map[Action]string{
		Allow: " target user notify autostart ",
		Ask:   " target default_target user notify autostart ",
		Deny:  " notify ",
	}[r.action]
	seen := map[string]bool{}
	for _, p := range params {
		key, value, ok := strings.Cut(p, "=")
		if !ok || !strings.Contains(allowed, " "+key+" ") {
			return fmt.Errorf("parameter %s not allowed here (allowed: %s)", Quoted(p), strings.TrimSpace(allowed))
		}
		if seen[key] {
			return fmt.Errorf("parameter %s given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "target":
			r.redirect, err = parseToken(value, redirectTokens)
		case "default_target": // only checked: ask is never answered here
			_, err = parseToken(value, redirectTokens)
		case "user":
			if !ValidUser(value) {
				err = fmt.Errorf("invalid user %s", Quoted(value))
			}
			r.user = value
		case "notify":
			r.notify, err = yesNo(value)
		case "autostart":
			r.autostart, err = yesNo(value)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

func yesNo(s string) (bool, error) {
	switch s {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("want yes or no, got %s", Quoted(s))
}
