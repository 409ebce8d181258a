package attack

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// attempt is one update during which the attacker does something, and what
// dom0 must answer.
type attempt struct {
	label string
	// args are pedos-dom0-update's (default -y: were the delivery
	// accepted, dnf would install it, which the checks would see).
	args []string
	// exit is the status pedos-dom0-update must end with (default 1; -1:
	// any failure).
	exit int
	// want are substrings the run's reasons must all contain (Update.Reasons).
	want []string
	// wantAny, when set, are substrings of which the reasons must contain
	// at least one (for a cause the code may word in several ways).
	wantAny []string
	// kinds are finding kinds that must all be among the errors.
	kinds []string
	// untrusted is text the attacker chose that must never appear in
	// dom0's output or logs (threats.md: the message names the cause
	// without echoing unvalidated untrusted text).
	untrusted []string
}

func (a attempt) failf(format string, args ...any) error {
	return fmt.Errorf("%s: %s", a.label, fmt.Sprintf(format, args...))
}

// refused runs the attempt and checks that dom0 refused it for the
// expected reason, changed nothing and echoed nothing untrusted.
func (e *Env) refused(a attempt) (Update, error) {
	before, err := e.capture()
	if err != nil {
		return Update{}, err
	}
	logs := e.logMarks()
	if a.args == nil {
		a.args = []string{"-y"}
	}
	if a.exit == 0 {
		a.exit = 1
	}
	u, err := e.update(a.args...)
	if err != nil {
		return u, a.failf("%v", err)
	}
	switch {
	case a.exit < 0 && u.Exit == 0:
		return u, a.failf("want a failure, got %s", u.summary())
	case a.exit > 0 && u.Exit != a.exit:
		return u, a.failf("want exit %d, got %s", a.exit, u.summary())
	}
	reasons := u.Reasons()
	for _, w := range a.want {
		if !strings.Contains(reasons, w) {
			return u, a.failf("the reason does not say %q: %s", w, u.summary())
		}
	}
	if len(a.wantAny) > 0 && !slices.ContainsFunc(a.wantAny, func(w string) bool { return strings.Contains(reasons, w) }) {
		return u, a.failf("the reason does not name the cause (%s): %s", strings.Join(a.wantAny, " or "), u.summary())
	}
	for _, k := range a.kinds {
		if !slices.Contains(u.Kinds(), k) {
			return u, a.failf("no %s finding (findings: %v): %s", k, u.Kinds(), u.summary())
		}
	}
	after, err := e.capture()
	if err != nil {
		return u, err
	}
	if diffs := before.Unchanged(after); len(diffs) > 0 {
		return u, a.failf("%s", strings.Join(diffs, "; "))
	}
	return u, e.noEcho(a, u, logs)
}

// logMarks are the sizes of dom0's logs, to read what a run added.
func (e *Env) logMarks() map[string]int64 {
	marks := map[string]int64{}
	for _, p := range dom0Logs {
		if info, err := os.Stat(e.dom0Path(p)); err == nil {
			marks[p] = info.Size()
		}
	}
	return marks
}

// dom0Logs are where dom0 writes about a delivery: the update log and the
// qrexec daemon's log, which holds the receive service's stderr.
var dom0Logs = []string{"var/log/pedos/updates.log", "var/log/pedos-lab/qrexec-daemon.log"}

// noEcho checks that none of the attacker's text reached the front end's
// output or dom0's logs, raw or escaped.
func (e *Env) noEcho(a attempt, u Update, marks map[string]int64) error {
	texts := map[string]string{"stderr": u.Stderr, "stdout (JSON)": u.Stdout}
	for _, p := range dom0Logs {
		b, err := os.ReadFile(e.dom0Path(p))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if m := marks[p]; int64(len(b)) >= m {
			texts["/"+p] = string(b[m:])
		}
	}
	for where, text := range texts {
		for _, s := range a.untrusted {
			if strings.Contains(text, s) {
				return a.failf("untrusted text %q echoed in %s", s, where)
			}
		}
	}
	return nil
}

// Attacker programs. The UpdateVM's pedos-download-dom0-updates is
// replaced by fakeDownloader: it swallows dom0's configuration, ignores
// dom0's request and delivers what /root/attack/sender writes, under the
// session id dom0 passed, with the real qrexec-client-vm.
const fakeDownloader = `#!/bin/sh
# attacker: deliver /root/attack/sender's output instead of the transaction
case " $* " in *" --sync "*) exec cat >/dev/null ;; esac
for a; do case "$a" in --session=*) session=${a#--session=} ;; esac; done
exec qrexec-client-vm dom0 "PedOS.ReceiveUpdates+$session" /root/attack/sender
`

// streamSender writes the hand-made stream, closes its end and waits for
// dom0's status.
const streamSender = `#!/bin/sh
cat /root/attack/stream
exec >&-
exec cat >/dev/null
`

// filesSender sends the attacker's files with the real qfile-agent.
const filesSender = `#!/bin/sh
exec find /root/attack/files -mindepth 1 -maxdepth 1 -exec /usr/lib/pedos/bin/qfile-agent {} +
`

// deliverStream makes the UpdateVM answer the next update with stream.
func (e *Env) deliverStream(stream []byte) error {
	return e.installAttacker(streamSender, func() error {
		return e.writeVM(attackDir+"/stream", stream, 0o644)
	})
}

// deliverFiles makes the UpdateVM answer the next update with these files
// (name → content), sent by the real qfile-agent.
func (e *Env) deliverFiles(files map[string][]byte) error {
	return e.installAttacker(filesSender, func() error {
		for name, data := range files {
			if err := e.writeVM(attackDir+"/files/"+name, data, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *Env) installAttacker(sender string, payload func() error) error {
	if err := os.RemoveAll(e.vmPath(attackDir)); err != nil {
		return err
	}
	if err := payload(); err != nil {
		return err
	}
	if err := e.writeVM(attackDir+"/sender", []byte(sender), 0o755); err != nil {
		return err
	}
	return e.Lab.ReplaceProgram(e.Lab.UpdateVM(), "pedos-download-dom0-updates", []byte(fakeDownloader))
}

// refusedAll runs each attempt after setting up its delivery and returns a
// one-line summary of the reasons dom0 gave.
func (e *Env) refusedAll(cases []streamCase) (string, error) {
	var seen []string
	for _, c := range cases {
		if err := e.deliverStream(c.stream); err != nil {
			return "", err
		}
		if _, err := e.refused(c.attempt); err != nil {
			return "", err
		}
		seen = append(seen, c.label+": "+strings.Join(c.want, " "))
	}
	return "refused, dom0 unchanged — " + strings.Join(seen, "; "), nil
}

// streamCase is a hand-made stream and what dom0 must answer to it.
type streamCase struct {
	attempt
	stream []byte
}
