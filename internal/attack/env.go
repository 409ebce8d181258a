package attack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/lab"
	"pedos.dev/updates/internal/testrepo"
)

// Env is one group's lab and what the attacker and the checks need.
type Env struct {
	Lab  *lab.Lab
	ctx  context.Context
	form Form
	// originals are the UpdateVM's programs and dom0's files as the lab
	// made them, put back after every row.
	originals map[string][]byte
	// baseline is what runs in each domain when no update is running.
	baseline map[string]map[int]bool
	// notes are measurements a row reports besides its verdict.
	notes []string
	// undo are what reset does besides restoring the files above (files a
	// row added, mounts).
	undo []func() error
	// signers are the attacker's and the extra vendor's keys, by name.
	signers map[string]*testrepo.Signer
	// seq numbers the versions the metadata rows publish; pending says
	// that dom0 has updates it has not installed yet.
	seq     int
	pending bool
	// tmpAtStart is what dom0's /tmp held when the row began.
	tmpAtStart []string
	// endUpdate lets go of the last session liveSession holds.
	endUpdate func()
}

// attackDir is the attacker's scratch directory in the UpdateVM (its /root
// is DIR/domains/VM/root/root on the host).
const attackDir = "/root/attack"

// restorable are the files rows change and restore: the UpdateVM's
// programs (the attacker's) and dom0's configuration (the administrator's).
func (e *Env) restorable() []string {
	vm := e.Lab.UpdateVM()
	d0 := e.Lab.Root(lab.Dom0)
	return []string{
		e.Lab.ProgramPath(vm, "pedos-download-dom0-updates"),
		e.Lab.ProgramPath(vm, "qfile-agent"),
		filepath.Join(d0, dom0.ConfigPath),
		filepath.Join(d0, "etc/pedos/policy.d/50-pedos-updates.policy"),
		filepath.Join(d0, "etc/yum.repos.d/pedos-lab.repo"),
	}
}

func newEnv(ctx context.Context, l *lab.Lab, form Form) (*Env, error) {
	e := &Env{Lab: l, ctx: ctx, form: form, originals: map[string][]byte{}, signers: map[string]*testrepo.Signer{}}
	for _, p := range e.restorable() {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		e.originals[p] = b
	}
	base, err := e.processes()
	if err != nil {
		return nil, err
	}
	e.baseline = base
	return e, nil
}

// reset undoes what a row changed: programs, configuration, the attacker's
// directory, and any process a row left behind (after reporting it).
func (e *Env) reset() error {
	var errs []error
	for p, b := range e.originals {
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, b) {
			continue
		}
		if err := writeFileAtomic(p, b, 0o755); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(e.undo) - 1; i >= 0; i-- {
		errs = append(errs, e.undo[i]())
	}
	e.undo = nil
	errs = append(errs, os.RemoveAll(e.vmPath(attackDir)))
	extra, err := e.extraProcesses()
	errs = append(errs, err)
	for _, p := range extra {
		p.kill()
	}
	return errors.Join(errs...)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".attack-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// vmPath is the host path of a path in the UpdateVM's /root, /etc, /var or
// /tmp.
func (e *Env) vmPath(p string) string { return filepath.Join(e.Lab.Root(e.Lab.UpdateVM()), p) }

// dom0Path is the host path of a path in dom0's /root, /etc, /var or /tmp.
func (e *Env) dom0Path(p string) string { return filepath.Join(e.Lab.Root(lab.Dom0), p) }

// exec runs a command in a domain and returns its output and exit status.
func (e *Env) exec(domain string, stdin io.Reader, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(e.ctx, 3*time.Minute)
	defer cancel()
	out, errOut, code, err := e.Lab.Exec(ctx, domain, stdin, args...)
	if err != nil {
		err = fmt.Errorf("%s: %s: %w", domain, strings.Join(args, " "), err)
	}
	return string(out), string(errOut), code, err
}

// mustExec is exec for setup steps: anything but exit 0 is an error.
func (e *Env) mustExec(domain string, args ...string) (string, error) {
	out, errOut, code, err := e.exec(domain, nil, args...)
	if err == nil && code != 0 {
		err = fmt.Errorf("%s: %s: exit %d: %s", domain, strings.Join(args, " "), code, firstLines(errOut, 3))
	}
	return out, err
}

// Update is one run of pedos-dom0-update.
type Update struct {
	Args   []string
	Exit   int
	Report frontend.Report
	Stdout string
	Stderr string
}

// update runs pedos-dom0-update --json ARGS in dom0.
func (e *Env) update(args ...string) (Update, error) {
	u := Update{Args: args}
	var err error
	u.Stdout, u.Stderr, u.Exit, err = e.exec(lab.Dom0, nil, append([]string{"pedos-dom0-update", "--json"}, args...)...)
	if err != nil {
		return u, err
	}
	if u.Exit != frontend.ExitUsage {
		if err := json.Unmarshal([]byte(u.Stdout), &u.Report); err != nil {
			return u, fmt.Errorf("pedos-dom0-update %s: exit %d without a JSON report (%v): %s", strings.Join(args, " "), u.Exit, err, firstLines(u.Stderr, 5))
		}
	}
	return u, nil
}

// accepted runs pedos-dom0-update ARGS, which must succeed.
func (e *Env) accepted(args ...string) (Update, error) {
	u, err := e.update(args...)
	if err == nil && u.Exit != 0 {
		err = fmt.Errorf("pedos-dom0-update %s: %s", strings.Join(args, " "), u.summary())
	}
	return u, err
}

// Kinds lists the finding kinds of the delivery's result that are errors.
func (u Update) Kinds() []string {
	var kinds []string
	if u.Report.Result != nil {
		for _, f := range u.Report.Result.Findings {
			if f.Error {
				kinds = append(kinds, f.Kind)
			}
		}
	}
	return kinds
}

// Reasons is every cause the run gave, in one string: the front end's
// message, the delivery's error, each rejected package's reason and each
// finding.
func (u Update) Reasons() string {
	parts := []string{u.Report.Message}
	if r := u.Report.Result; r != nil {
		parts = append(parts, r.Error)
		for _, p := range r.Packages {
			if !p.OK {
				parts = append(parts, p.File+": "+p.Rejected)
			}
		}
		for _, f := range r.Findings {
			parts = append(parts, f.Kind+": "+f.Message)
		}
	}
	return strings.Join(parts, " | ")
}

// summary is a short description of a run for a FAIL line.
func (u Update) summary() string {
	return fmt.Sprintf("exit %d: %s", u.Exit, clip(u.Reasons(), 300))
}

// publish adds packages to the mirror as a new revision.
func (e *Env) publish(opts lab.PublishOptions) (lab.Revision, error) {
	rev, err := e.Lab.Publish(opts)
	if err != nil {
		return rev, fmt.Errorf("publish %v: %w", opts.Specs, err)
	}
	return rev, nil
}

// setConf sets keys in dom0's updates.conf (the administrator's
// configuration; reset restores it).
func (e *Env) setConf(kv ...string) error {
	path := e.dom0Path(dom0.ConfigPath)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i := 0; i+1 < len(kv); i += 2 {
		key, value := kv[i], kv[i+1]
		replaced := false
		for j, line := range lines {
			if k, _, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
				lines[j], replaced = key+" = "+value, true
			}
		}
		if !replaced {
			lines = append(lines, key+" = "+value)
		}
	}
	return writeFileAtomic(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// addDom0File writes a new file in dom0 (below its /etc, /var, /root or
// /tmp) that reset removes.
func (e *Env) addDom0File(p string, data []byte) error {
	host := e.dom0Path(p)
	if err := os.WriteFile(host, data, 0o644); err != nil {
		return err
	}
	e.undo = append(e.undo, func() error { return os.Remove(host) })
	return nil
}

// writeVM writes a file into the UpdateVM (below its /root, /etc, /var or
// /tmp), creating directories.
func (e *Env) writeVM(p string, data []byte, mode os.FileMode) error {
	host := e.vmPath(p)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return err
	}
	return os.WriteFile(host, data, mode)
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
