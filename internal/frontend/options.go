// Package frontend is the logic of pedos-dom0-update, the command people run
// in dom0: it parses the reference tool's options, starts a session, asks the
// UpdateVM to download, waits for dom0's receive result, reports it, and runs
// dnf against the cached repository.
package frontend

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"pedos.dev/updates/internal/dnfconf"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/updatecall"
)

// Options is a parsed pedos-dom0-update command line (overview.md, "Front
// end").
type Options struct {
	Action         string               // dnf verb on both sides
	Packages       []string             // PKG... (before or after --)
	DNFOptions     []string             // passed to dnf on both sides (dnfFlags, --exclude=)
	RepoSwitches   []dnfconf.RepoSwitch // --enablerepo/--disablerepo in order, forwarded to the UpdateVM only
	Excludes       []string             // from --exclude=, also judged by the withholding check
	ReleaseVer     string               // --releasever: this run's $releasever on both sides (updates.conf's otherwise)
	CheckOnly      bool
	Clean          bool
	DownloadOnly   bool
	AllowDowngrade bool
	AssumeYes      bool
	// AssumeNo is --assumeno, for dom0's dnf only: it shows the transaction
	// and stops. The UpdateVM's dnf must answer its own download.
	AssumeNo bool
	JSON     bool
	Help     bool
	Version  bool   // --version: print the release and commit, do nothing else
	Root     string // dom0's root prefix (the lab; "" on a real host)
	// RootMissing is set when --root came without a value, or with a
	// relative one: a usage error then has no root the user meant, and is
	// not logged (Conclude).
	RootMissing bool
}

// IsQuery reports whether the action is answered by the UpdateVM alone
// (the other actions but remove, which needs no download at all, run dnf
// on both sides).
func (o Options) IsQuery() bool { return updatecall.IsQuery(o.Action) }

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

// ownOptions are pedos-dom0-update's own options (besides noOps): no
// dnf's, so never after "--".
var ownOptions = map[string]bool{
	"--action": true, "--root": true, "--check-only": true, "--clean": true, "--downloadonly": true,
	"--allow-downgrade": true, "--json": true, "-h": true, "--help": true, "--version": true,
}

// valueOptions take a value, written --opt=VALUE or --opt VALUE as dnf
// accepts both: neither may be read as anything else (a package name).
var valueOptions = map[string]bool{
	"--action": true, "--root": true, "--enablerepo": true, "--disablerepo": true,
	"--exclude": true, "--excludepkgs": true, "-x": true, "--releasever": true,
}

// dnfFlags are the dnf options, without a value, that go to dnf on both
// sides; with -y and the value options above, they are all that do. An
// allow-list of full spellings, because dnf also takes any unambiguous
// abbreviation of a long option (--nogpg is --nogpgcheck) and bundled
// short ones (-yc FILE is -y -c FILE): a deny-list could not keep dom0's
// dnf from skipping signatures or reading other repositories
// (--nogpgcheck, --setopt, --repofrompath, --config, --installroot).
var dnfFlags = map[string]bool{
	"--best": true, "-b": true, "--nobest": true, "--allowerasing": true, "--skip-broken": true,
	"--nodocs": true, "--noautoremove": true, "--obsoletes": true,
	"--showduplicates": true, "-q": true, "--quiet": true, "-v": true, "--verbose": true,
}

// ParseArgs parses the command line (without the program name). After
// "--" come dnf's arguments only: the same dnf options as before it, and
// package specs. JSON and Root are set whenever --json and --root come
// before any "--", even with an error anywhere on the line, so that the
// error can be reported as JSON and logged below the root the user named,
// not the default one.
func ParseArgs(args []string) (Options, error) {
	own := args
	if end := slices.Index(args, "--"); end >= 0 {
		own = args[:end]
	}
	o := Options{JSON: slices.Contains(own, "--json")}
	o.Root, o.RootMissing = rootArg(own)
	if err := o.parse(args); err != nil {
		return o, err
	}
	return o, o.finish()
}

func (o *Options) parse(args []string) error {
	ours := true // false after "--"
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(arg, "=")
		if pattern, ok := strings.CutPrefix(arg, "-x"); ok && pattern != "" && pattern[0] != '=' {
			name, value, hasValue = "-x", pattern, true // dnf's bundled form, -xPATTERN
		}
		if valueOptions[name] && !hasValue {
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				return usageErr("%s needs a value: %s=VALUE or %s VALUE", name, name, name)
			}
			i++
			value = args[i]
		}
		switch {
		case ours && arg == "--":
			ours = false
		case ours && (arg == "-h" || arg == "--help"):
			o.Help = true
		case ours && arg == "--version":
			o.Version = true
		case ours && name == "--action" && value == "":
			// Not the default action: an empty value is a mistake, and
			// the default would upgrade everything.
			return usageErr("--action needs a value: --action=ACTION or --action ACTION")
		case ours && name == "--action" && o.Action != "" && o.Action != value:
			// Not "the last one wins": one of them may remove packages.
			return usageErr("--action given twice, as %q and %q: give one", o.Action, value)
		case ours && name == "--action":
			o.Action = value
		case ours && name == "--root" && value == "":
			return usageErr("--root needs a directory")
		case ours && name == "--root" && !filepath.IsAbs(value):
			// The working directory is no root of dom0's.
			return usageErr("--root needs an absolute directory, not %q", value)
		case ours && name == "--root":
			// o.Root is rootArg's, set before parsing.
		case ours && arg == "--check-only":
			o.CheckOnly = true
		case ours && arg == "--clean":
			o.Clean = true
		case ours && arg == "--downloadonly":
			o.DownloadOnly = true
		case ours && arg == "--allow-downgrade":
			o.AllowDowngrade = true
		case ours && arg == "--json":
			o.JSON = true
		case ours && noOps[arg]:
		case name == "--enablerepo" || name == "--disablerepo":
			o.RepoSwitches = append(o.RepoSwitches, dnfconf.RepoSwitch{Enable: name == "--enablerepo", Glob: value})
		case name == "--exclude" || name == "--excludepkgs" || name == "-x":
			// dnf takes an empty value as "no excludes", dropping
			// dnf.conf's too, which the receive service would still expect
			// to be left out (M1, M2): every pattern must be there.
			patterns := strings.Split(value, ",")
			if slices.Contains(patterns, "") {
				return usageErr("%s %q: an empty package pattern (dnf would drop dnf.conf's excludes too)", name, value)
			}
			o.Excludes = append(o.Excludes, patterns...)
			o.DNFOptions = append(o.DNFOptions, "--exclude="+value)
		case name == "--releasever":
			// A distribution upgrade's habit (--releasever=NEXT): the
			// UpdateVM's repository URLs and dom0's dnf both take it.
			if err := dom0.CheckReleaseVer(value); err != nil {
				return usageErr("--releasever: %v", err)
			}
			o.ReleaseVer = value
		case arg == "--refresh":
			// dnf's, before or after "--": always in effect, on both sides.
		case arg == "-y" || arg == "--assumeyes":
			o.AssumeYes = true
		case arg == "--assumeno":
			o.AssumeNo = true
		case dnfFlags[arg]:
			o.DNFOptions = append(o.DNFOptions, arg)
		case !ours && (ownOptions[name] || noOps[arg]):
			return usageErr("%q is an option of pedos-dom0-update's own: put it before \"--\", after which only dnf's options and package specs go", arg)
		case strings.HasPrefix(arg, "-"):
			return usageErr("%q is not an option pedos-dom0-update takes or passes to dnf", arg)
		default:
			o.Packages = append(o.Packages, arg)
		}
	}
	return nil
}

// rootArg is the value of the last --root (--root=DIR or --root DIR) among
// our own arguments, read as parse reads it; missing says that this --root
// has no value.
func rootArg(own []string) (root string, missing bool) {
	for i, arg := range own {
		name, value, hasValue := strings.Cut(arg, "=")
		if name != "--root" {
			continue
		}
		if !hasValue && i+1 < len(own) && !strings.HasPrefix(own[i+1], "-") {
			value = own[i+1]
		}
		root, missing = value, !filepath.IsAbs(value)
	}
	return root, missing
}

// finish fills in the default action and checks combinations.
func (o *Options) finish() error {
	if o.Help || o.Version {
		return nil
	}
	if o.Action == "" {
		o.Action = "upgrade"
		if len(o.Packages) > 0 {
			o.Action = "install"
		}
	}
	// dnf 4 runs update and upgrade-to as upgrade (aliases of one command):
	// one name, so that every check an upgrade gets (withholding, M1, M2)
	// is made for them too.
	if o.Action == "update" || o.Action == "upgrade-to" {
		o.Action = "upgrade"
	}
	if !updatecall.IsDownload(o.Action) && !o.IsQuery() && o.Action != "remove" {
		unknown := o.Action
		o.Action = "" // no action is known: the report's "action" stays empty
		return usageErr("unknown action %q (upgrade, install, reinstall, downgrade, remove, upgrade-to, list, search, info)", unknown)
	}
	// list and info without names cover every package, as dnf's do (the
	// listing is bounded as any query's); the rest need names.
	if o.Action != "upgrade" && o.Action != "list" && o.Action != "info" && len(o.Packages) == 0 {
		return usageErr("--action=%s needs package names", o.Action)
	}
	// Nothing the user asked for is silently ignored: remove downloads
	// nothing and queries install nothing.
	if o.Action == "remove" && (o.DownloadOnly || o.Clean || len(o.RepoSwitches) > 0) {
		return usageErr("--action=remove removes installed packages and downloads nothing: it takes no --downloadonly, --clean, --enablerepo or --disablerepo")
	}
	if o.IsQuery() && o.DownloadOnly {
		return usageErr("--action=%s only asks the UpdateVM and installs nothing: it takes no --downloadonly", o.Action)
	}
	if o.CheckOnly && len(o.Packages) > 0 {
		return usageErr("--check-only asks whether any update for dom0 exists: it takes no package names")
	}
	if o.CheckOnly && o.Action != "upgrade" {
		return usageErr("--check-only only asks whether updates exist: it takes no --action")
	}
	if o.CheckOnly && o.DownloadOnly {
		return usageErr("--check-only only asks whether updates exist: it takes no --downloadonly")
	}
	// dnf refuses --best with --nobest on its command line, but only in the
	// UpdateVM, after dom0's database was sent; and it lets --assumeno
	// silently beat -y. Either pair says two things: which is meant is the
	// user's to say.
	if (slices.Contains(o.DNFOptions, "--best") || slices.Contains(o.DNFOptions, "-b")) && slices.Contains(o.DNFOptions, "--nobest") {
		return usageErr("--best and --nobest contradict each other: give one")
	}
	if o.AssumeYes && o.AssumeNo {
		return usageErr("-y (--assumeyes) and --assumeno contradict each other: give one")
	}
	// --assumeno is dom0's dnf's answer, and these run no dnf in dom0.
	if o.AssumeNo && (o.DownloadOnly || o.CheckOnly || o.IsQuery()) {
		return usageErr("--assumeno answers dom0's dnf, which does not run with --downloadonly, --check-only or --action=list, search or info")
	}
	if o.Action == "downgrade" && !o.AllowDowngrade {
		return usageErr("--action=downgrade installs older versions: add --allow-downgrade to confirm")
	}
	if o.Action != "downgrade" && o.AllowDowngrade {
		return usageErr("--allow-downgrade only goes with --action=downgrade: no other action installs an older version")
	}
	for _, p := range o.Packages {
		if !forwardable(p) {
			return usageErr("%q is not a package name: a name, NAME-VERSION[-RELEASE][.ARCH], a glob or a provide, of letters, digits and -_.,:=+/@%%^~*?[]() only, up to 256 characters (a version comparison such as 'NAME >= 1.0' is not taken: name the version)", p)
		}
		// dnf takes a word ending in .rpm, or a URL, as a package file to
		// install as it is: around the cached repository and both verifiers,
		// and without a signature check (localpkg_gpgcheck is off).
		if strings.HasSuffix(p, ".rpm") || strings.Contains(p, "://") {
			return usageErr("%q is a package file or URL: dom0 installs only from the verified cached repository; name the package (hello, hello-1.2) instead", p)
		}
	}
	// Each with its option, so that the message names it.
	forwarded := slices.Clone(o.DNFOptions)
	for _, sw := range o.RepoSwitches {
		name, _, _ := strings.Cut(sw.Option(), "=")
		if sw.Glob == "" {
			return usageErr("%s needs a repository id or glob: %s=ID", name, name)
		}
		forwarded = append(forwarded, sw.Option())
	}
	for _, a := range forwarded {
		if !forwardable(a) {
			return usageErr("%q cannot be passed to dnf: a value holds letters, digits and -_.,:=+/@%%^~*?[]() only", a)
		}
	}
	return nil
}

// forwardable says whether an argument may travel to the UpdateVM's command
// line: package specs (with provides such as pkgconfig(glib-2.0) or
// perl(Foo::Bar)), globs and option values. The command is argv in dom0 and
// one single-quoted word each in the UpdateVM's shell (QrexecCaller), so
// nothing here is a shell's to act on; the characters are limited anyway,
// and a word that begins with "-" is an option, never a package.
func forwardable(arg string) bool {
	if arg == "" || len(arg) > 256 {
		return false
	}
	for _, r := range arg {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("-_.,:=+/@%^~*?[]()", r)) {
			return false
		}
	}
	return true
}
