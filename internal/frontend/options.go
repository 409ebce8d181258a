// Package frontend is the logic of pedos-dom0-update, the command people run
// in dom0: it parses the reference tool's options, starts a session, asks the
// UpdateVM to download, waits for dom0's receive result, reports it, and runs
// dnf against the cached repository.
package frontend

import (
	"errors"
	"fmt"
	"strings"
)

// Options is a parsed pedos-dom0-update command line (overview.md, "Front
// end").
type Options struct {
	Action         string   // dnf verb on both sides
	Packages       []string // PKG... (and everything after --)
	DNFOptions     []string // passed to dnf on both sides
	EnableRepos    []string // forwarded to the UpdateVM only
	DisableRepos   []string
	Excludes       []string // from --exclude=, also judged by the withholding check
	CheckOnly      bool
	Clean          bool
	DownloadOnly   bool
	AllowDowngrade bool
	AssumeYes      bool
	JSON           bool
	Help           bool
	Root           string // dom0's root prefix (the lab; "" on a real host)
}

// Actions dnf runs on both sides; queries are answered by the UpdateVM
// alone, and remove needs no download at all.
var (
	downloadActions = map[string]bool{"upgrade": true, "install": true, "reinstall": true, "downgrade": true, "upgrade-to": true}
	queryActions    = map[string]bool{"list": true, "search": true, "info": true}
)

// IsQuery reports whether the action is answered by the UpdateVM alone.
func (o Options) IsQuery() bool { return queryActions[o.Action] }

// noOps are accepted for compatibility with the reference tool's habits.
var noOps = map[string]bool{
	"--force-xen-upgrade": true, "--console": true, "--show-output": true,
	"--preserve-terminal": true, "--gui": true, "--nogui": true,
}

// ErrUsage marks a usage error (exit 2).
var ErrUsage = errors.New("usage error")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...))
}

// ParseArgs parses the command line (without the program name).
func ParseArgs(args []string) (Options, error) {
	var o Options
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(arg, "=")
		switch {
		case arg == "--":
			o.Packages = append(o.Packages, args[i+1:]...)
			i = len(args)
		case arg == "-h" || arg == "--help":
			o.Help = true
		case name == "--action":
			o.Action = value
		case name == "--root":
			if !hasValue {
				if i+1 >= len(args) {
					return o, usageErr("--root needs a directory")
				}
				i++
				value = args[i]
			}
			o.Root = value
		case name == "--enablerepo" && hasValue:
			o.EnableRepos = append(o.EnableRepos, value)
		case name == "--disablerepo" && hasValue:
			o.DisableRepos = append(o.DisableRepos, value)
		case name == "--exclude" && hasValue:
			o.Excludes = append(o.Excludes, strings.Split(value, ",")...)
			o.DNFOptions = append(o.DNFOptions, arg)
		case arg == "--check-only":
			o.CheckOnly = true
		case arg == "--clean":
			o.Clean = true
		case arg == "--downloadonly":
			o.DownloadOnly = true
		case arg == "--allow-downgrade":
			o.AllowDowngrade = true
		case arg == "--json":
			o.JSON = true
		case arg == "-y" || arg == "--assumeyes":
			o.AssumeYes = true
		case noOps[arg]:
		case strings.HasPrefix(arg, "-"):
			o.DNFOptions = append(o.DNFOptions, arg)
		default:
			o.Packages = append(o.Packages, arg)
		}
	}
	return o, o.finish()
}

// finish fills in the default action and checks combinations.
func (o *Options) finish() error {
	if o.Help {
		return nil
	}
	if o.Action == "" {
		o.Action = "upgrade"
		if len(o.Packages) > 0 {
			o.Action = "install"
		}
	}
	if o.Action == "update" {
		o.Action = "upgrade"
	}
	if !downloadActions[o.Action] && !queryActions[o.Action] && o.Action != "remove" {
		return usageErr("unknown action %q (upgrade, install, reinstall, downgrade, remove, upgrade-to, list, search, info)", o.Action)
	}
	if o.Action != "upgrade" && o.Action != "list" && len(o.Packages) == 0 {
		return usageErr("--action=%s needs package names", o.Action)
	}
	if o.CheckOnly && (o.Action != "upgrade" || o.DownloadOnly) {
		return usageErr("--check-only only asks whether updates exist; it takes no action or --downloadonly")
	}
	if o.Action == "downgrade" && !o.AllowDowngrade {
		return usageErr("--action=downgrade installs older versions: add --allow-downgrade to confirm")
	}
	for _, p := range o.Packages {
		if strings.HasPrefix(p, "-") || !forwardable(p) {
			return usageErr("%q is not a package name", p)
		}
	}
	for _, a := range append(append(o.DNFOptions, o.EnableRepos...), o.DisableRepos...) {
		if !forwardable(a) {
			return usageErr("%q cannot be passed to dnf", a)
		}
	}
	return nil
}

// forwardable says whether an argument may travel to the UpdateVM's command
// line: package specs, globs and option values, nothing a shell would act on.
func forwardable(arg string) bool {
	if arg == "" || len(arg) > 256 {
		return false
	}
	for _, r := range arg {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("-_.,:=+/@%^~*?[]", r)) {
			return false
		}
	}
	return true
}
