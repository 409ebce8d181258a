// Command pedos-lab runs PedOS domains on this Linux host: dom0 without
// network, an UpdateVM, an ordinary VM, and a mirror serving a signed
// repository. See
// docs/lab.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pedos.dev/updates/internal/attack"
	"pedos.dev/updates/internal/cmdline"
	"pedos.dev/updates/internal/lab"
	"pedos.dev/updates/internal/release"
)

const usage = `Usage: pedos-lab COMMAND --dir DIR [options] [arguments]
       pedos-lab --version   (the release and commit it was built from)

Runs dom0, an UpdateVM, an ordinary VM (work) and a package mirror as
isolated domains on this host (each in its own mount, network, pid, UTS and
IPC namespaces; needs root).
DIR holds everything: the domains' files, logs, keys and the mirror.
--dir defaults to $PEDOS_LAB_DIR.

Commands:
  up [--updatevm NAME] [--bin DIR]
      Create or reuse the lab in DIR and start it: dom0 (no network, loopback
      down), the UpdateVM (default sys-firewall) linked to the mirror
      (http://198.18.0.1/), the VM work (no network: the attack suite's rogue
      caller), qrexec between dom0 and both VMs. On first use, publishes
      libfoo-1.0-1 and hello-1.0-1 and installs them in dom0.
      --bin: the project's programs to copy into the domains (default
      $PEDOS_BIN, else the directory up used last time, else this program's
      directory). Running twice is fine.
        pedos-lab up --dir /tmp/lab

  down
      Stop every process of the lab (by pid), and with them its namespaces,
      veth pair and mounts. DIR stays for inspection and the next up.
        pedos-lab down --dir /tmp/lab

  status [--json]
      The domains, their processes, the mirror URL and revision, the qrexec
      sockets.
        pedos-lab status --dir /tmp/lab --json

  exec [-e KEY=VALUE]... DOMAIN [--] COMMAND [ARGS...]
      Run COMMAND inside DOMAIN (dom0, the UpdateVM, work or mirror) as root, with
      this command's stdin, stdout and stderr, and exit with its status, 127
      if it could not be started in the domain (not found, not executable),
      or 125 if pedos-lab could not run it (DIR is not a lab, DOMAIN is not
      one of its domains or is not running).
        pedos-lab exec --dir /tmp/lab dom0 -- rpm -q hello
        pedos-lab exec --dir /tmp/lab sys-firewall -- ip -brief address

  publish [--snapshot NAME] [--key NAME] [--metadata-key NAME|none] [--time TIME] SPEC...
      Add packages to the mirror as a new revision, run createrepo_c and sign
      repodata/repomd.xml (repomd.xml.asc). A SPEC is NAME-[EPOCH:]VERSION-RELEASE
      followed by KEY=VALUE words: arch=, size=BYTES, requires=, provides=,
      conflicts=, obsoletes= (repeatable), key=NAME|none (this package's
      signer), pre=fail or post=fail (a scriptlet that exits 1).
      --snapshot NAME  also keep this revision at /repo/snapshots/NAME/
                       (with no SPEC: the current revision)
      --key NAME       sign with lab key NAME (made on first use) instead of
                       the publisher key dom0 trusts
      --metadata-key   sign repomd.xml with another key, or none for no .asc
      --time TIME      metadata revision and timestamps (RFC 3339 or Unix
                       seconds), e.g. an old time to stage a freeze
        pedos-lab publish --dir /tmp/lab 'hello-1.1-1 requires=libfoo>=2.0' libfoo-2.0-1
        pedos-lab publish --dir /tmp/lab --snapshot before-evil
        pedos-lab publish --dir /tmp/lab --key evil hello-9-1

  attack [--only ID[,ID...]]... [--long] [--json] [--bin DIR]
      Run the adversarial suite (docs/attacks.md): every row of threats.md
      (S1-S13, P1-P11, M1-M9, C1-C7, F1-F5) plus the honest path (H1) and
      the load rows (L1, L2), each against the real programs in a fresh lab
      per group in DIR/GROUP. Prints one line per row on stderr as it ends,
      then the report on stdout: one line per row (PASS, FAIL or SKIP with
      the reason) and the totals. --only takes ids or a table letter (S, P,
      M, C, F, H, L), repeated or comma-separated; --long runs 100 kills in
      F1 (20 by default); --json prints the report as JSON (totals
      for PASS, FAIL and SKIP, 0 included).
        pedos-lab attack --dir /tmp/attacks
        pedos-lab attack --dir /tmp/attacks --only S2,M3 --json

Exit status: 0 done; 1 failure (attack: a row failed); 2 usage error (an
unknown option, a word a command does not take, a bad package spec or
name, nothing to publish, an unknown --only id); exec: the command's, 127
if it could not be started, or 125 if pedos-lab could not run it.
`

// cli prints the usage: in full for --help, as a pointer to --help after a
// usage error, where the message matters more than the pages of text.
var cli = cmdline.Usage{Command: "pedos-lab", Text: usage, OnError: "pedos-lab --help explains the commands, with examples"}

func main() {
	if len(os.Args) < 2 {
		cli.Fail("no command: want up, down, status, exec, publish or attack")
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := cli.FlagSet()
	dir := fs.String("dir", os.Getenv("PEDOS_LAB_DIR"), "")
	var err error
	switch cmd {
	case "-h", "-help", "--help", "help":
		cli.Help()
	case "--version":
		fmt.Println(release.Line("pedos-lab"))
	case lab.InitCommand:
		err = domainInit(fs, dir, args)
	case "up":
		err = up(fs, dir, args)
	case "down":
		parseNoOperands(fs, dir, args)
		err = lab.Down(*dir)
	case "status":
		err = status(fs, dir, args)
	case "exec":
		os.Exit(execute(fs, dir, args))
	case "publish":
		err = publish(fs, dir, args)
	case "attack":
		err = runAttacks(fs, dir, args)
	default:
		cli.Fail("unknown command %q", cmd)
	}
	if argErr, ok := errors.AsType[*lab.ArgumentError](err); ok {
		cli.Fail("%v", argErr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pedos-lab:", err)
		os.Exit(1)
	}
}

// parse parses a command's options and requires --dir.
func parse(fs *flag.FlagSet, dir *string, args []string) {
	cli.Parse(fs, args)
	requireDir(dir)
}

// parseNoOperands is parse for a command that takes options only.
func parseNoOperands(fs *flag.FlagSet, dir *string, args []string) {
	cli.ParseOptionsOnly(fs, args)
	requireDir(dir)
}

// asksJSON says whether the words before any "--" ask for JSON, before they
// are parsed (a usage error must be answered in JSON too): the last --json
// counts, its value a bool, as the flag package takes it. (A word the flag
// package would take otherwise, the value of another option or after an
// operand, still counts here: the answer is then JSON needlessly, no harm.)
func asksJSON(args []string) bool {
	asked := false
	for _, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if name == "-json" || name == "json" {
			asked = true
			if hasValue {
				asked, _ = strconv.ParseBool(value)
			}
		}
	}
	return asked
}

// requireDir fails with a usage error when no lab directory was given.
func requireDir(dir *string) {
	if *dir == "" {
		cli.Fail("--dir is required (or set PEDOS_LAB_DIR)")
	}
}

func up(fs *flag.FlagSet, dir *string, args []string) error {
	updateVM := fs.String("updatevm", "", "")
	bin := fs.String("bin", "", "")
	parseNoOperands(fs, dir, args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := lab.Up(ctx, lab.Options{Dir: *dir, UpdateVM: *updateVM, BinDir: *bin, Log: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Printf("lab %s is up: dom0, %s, %s, mirror at %s\n", l.Dir, l.UpdateVM(), lab.AppVM, l.MirrorURL())
	return nil
}

func status(fs *flag.FlagSet, dir *string, args []string) error {
	asJSON := fs.Bool("json", false, "")
	// A script reading stdout gets a failure in JSON too, a usage error's
	// among them.
	failure := func(exit int, message string) {
		cmdline.WriteJSON(os.Stdout, struct {
			Exit    int    `json:"exit"`
			Message string `json:"message"`
		}{exit, message})
	}
	if asksJSON(args) {
		cli.OnFail = func(message string) { failure(cmdline.ExitUsage, message) }
	}
	parseNoOperands(fs, dir, args)
	st, err := lab.GetStatus(*dir)
	if err != nil {
		if *asJSON {
			failure(1, err.Error())
		}
		return err
	}
	if *asJSON {
		return cmdline.WriteJSON(os.Stdout, st)
	}
	st.Print(os.Stdout)
	return nil
}

func execute(fs *flag.FlagSet, dir *string, args []string) int {
	var env envFlags
	fs.Var(&env, "e", "")
	parse(fs, dir, args)
	domain, command := fs.Arg(0), fs.Args()[min(1, fs.NArg()):]
	if len(command) > 0 && command[0] == "--" {
		command = command[1:]
	}
	if len(command) == 0 {
		cli.Fail("exec: want DOMAIN [--] COMMAND [ARGS...]")
	}
	l, err := lab.Open(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pedos-lab:", err)
		return 125
	}
	if term := os.Getenv("TERM"); term != "" {
		env = append([]string{"TERM=" + term}, env...)
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	code, err := l.Run(context.Background(), domain, lab.Command{
		Args: command, Env: env, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Signals: signals,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pedos-lab:", err)
		return 125
	}
	return code
}

type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, " ") }
func (e *envFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return errors.New("want KEY=VALUE")
	}
	*e = append(*e, v)
	return nil
}

func publish(fs *flag.FlagSet, dir *string, args []string) error {
	var opts lab.PublishOptions
	fs.StringVar(&opts.Snapshot, "snapshot", "", "")
	fs.StringVar(&opts.Key, "key", "", "")
	fs.StringVar(&opts.MetadataKey, "metadata-key", "", "")
	when := fs.String("time", "", "")
	parse(fs, dir, args)
	if *when != "" {
		t, err := parseTime(*when)
		if err != nil {
			cli.Fail("%v", err)
		}
		opts.Time = t
	}
	opts.Specs = fs.Args()
	rev, err := lab.Publish(*dir, opts)
	if err != nil {
		return err
	}
	switch {
	case len(opts.Specs) == 0:
		fmt.Printf("repo/snapshots/%s/ names revision %04d (repomd revision %d) at %s\n", opts.Snapshot, rev.Number, rev.Revision, rev.Path)
	case opts.Snapshot != "":
		fmt.Printf("published revision %04d (repomd revision %d) at %s and repo/snapshots/%s/\n", rev.Number, rev.Revision, rev.Path, opts.Snapshot)
	default:
		fmt.Printf("published revision %04d (repomd revision %d) at %s\n", rev.Number, rev.Revision, rev.Path)
	}
	for _, name := range rev.Added {
		fmt.Println("  added", name)
	}
	return nil
}

// errAttacksFailed makes attack exit 1 after printing its report.
var errAttacksFailed = errors.New("some attacks were not stopped (FAIL rows above)")

func runAttacks(fs *flag.FlagSet, dir *string, args []string) error {
	var only []string
	fs.Func("only", "", func(v string) error {
		only = append(only, strings.Split(v, ",")...)
		return nil
	})
	long := fs.Bool("long", false, "")
	asJSON := fs.Bool("json", false, "")
	bin := fs.String("bin", "", "")
	if asksJSON(args) { // the report's shape, no rows, for a usage error too
		cli.OnFail = func(message string) {
			rep := attack.NewReport()
			rep.Exit, rep.Error = cmdline.ExitUsage, message
			rep.WriteJSON(os.Stdout)
		}
	}
	parse(fs, dir, args)
	// A word left over is most likely a row meant for --only: running
	// every row instead, or only the others, would hide the mistake.
	if fs.NArg() != 0 {
		cli.Fail("unexpected argument %q: select rows with --only (--only S2 --only M3, or --only S2,M3)", fs.Arg(0))
	}
	for _, id := range only {
		if !slices.ContainsFunc(attack.Rows(), func(r attack.Row) bool { return attack.Selected(r.ID, []string{id}) }) {
			cli.Fail("--only %s: no such row or table (S1, S, ...: docs/attacks.md)", id)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Progress goes to stderr with --json too: a run takes minutes, and
	// stdout keeps the JSON alone.
	opts := attack.Options{Dir: *dir, BinDir: *bin, Only: only, Long: *long, Progress: os.Stderr}
	rep, err := attack.Run(ctx, opts)
	switch {
	case *asJSON:
		// stdout holds one JSON object whatever happened: a script must
		// not have to tell "no output" from "no rows".
		if err != nil {
			rep.Error = err.Error()
		}
		if jerr := rep.WriteJSON(os.Stdout); err == nil {
			err = jerr
		}
	case len(rep.Rows) > 0:
		rep.Print(os.Stdout)
	}
	if err == nil && rep.Failed() {
		err = errAttacksFailed
	}
	return err
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var secs int64
	if _, err := fmt.Sscanf(s, "%d", &secs); err != nil || fmt.Sprint(secs) != s {
		return time.Time{}, fmt.Errorf("--time %q: want RFC 3339 or Unix seconds", s)
	}
	return time.Unix(secs, 0), nil
}

// domainInit is the hidden command each domain's first process runs.
func domainInit(fs *flag.FlagSet, dir *string, args []string) error {
	domain := fs.String("domain", "", "")
	role := fs.String("role", "", "")
	if err := fs.Parse(args); err != nil || *domain == "" || *dir == "" {
		cli.Fail("%s is for the lab's domains: it needs --dir, --domain and --role", lab.InitCommand)
	}
	return lab.RunInit(*dir, *domain, lab.Role(*role), os.NewFile(3, "status"))
}
