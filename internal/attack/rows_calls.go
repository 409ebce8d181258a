package attack

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/lab"
)

// policyFile is the shipped qrexec policy in dom0.
const policyFile = "etc/pedos/policy.d/50-pedos-updates.policy"

// liveSession makes dom0 wait for a delivery, as pedos-dom0-update does
// before it calls the UpdateVM (frontend.NewSession on dom0's files), and
// holds the session as it would, until the row ends or endUpdate.
func (e *Env) liveSession(deadline time.Time) (dom0.Session, error) {
	c, err := dom0.LoadConfig(e.Lab.Root(lab.Dom0))
	if err != nil {
		return dom0.Session{}, err
	}
	s, release, err := frontend.NewSession(c, dom0.Session{Action: "upgrade", Deadline: deadline}, nil, io.Discard)
	if err != nil {
		return s, err
	}
	e.endUpdate = release
	e.undo = append(e.undo, func() error { release(); return nil })
	return s, nil
}

// sessionWaiting says whether the live session is still unclaimed.
func (e *Env) sessionWaiting() bool {
	_, err := os.Stat(e.dom0Path(filepath.Join(dom0.StateDir, "session.json")))
	return err == nil
}

// rogueCall makes the UpdateVM call dom0's service with stdin and returns
// qrexec-client-vm's exit status (the service's, or 126 for a refusal).
func (e *Env) rogueCall(service string, stdin []byte, env ...string) (int, string, error) {
	return e.callFrom(e.Lab.UpdateVM(), service, stdin, env...)
}

// callFrom is rogueCall from any VM of the lab (lab.AppVM: a VM that is
// not the UpdateVM).
func (e *Env) callFrom(domain, service string, stdin []byte, env ...string) (int, string, error) {
	args := append(append([]string{"env"}, env...), "qrexec-client-vm", "dom0", service)
	_, stderr, code, err := e.exec(domain, bytes.NewReader(stdin), args...)
	return code, stderr, err
}

// unchangedBy runs act and checks that dom0 is as it was and that none of
// the untrusted text reached dom0's logs.
func (e *Env) unchangedBy(label string, untrusted []string, act func() error) error {
	before, err := e.capture()
	if err != nil {
		return err
	}
	marks := e.logMarks()
	if err := act(); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	after, err := e.capture()
	if err != nil {
		return err
	}
	if diffs := before.Unchanged(after); len(diffs) > 0 {
		return fmt.Errorf("%s: %s", label, strings.Join(diffs, "; "))
	}
	return e.noEcho(attempt{label: label, untrusted: untrusted}, Update{}, marks)
}

// expectRefusedCall calls the service as the UpdateVM and wants exit 126,
// a log line saying why, and the session still waiting when waiting.
func (e *Env) expectRefusedCall(label, service string, logWant string, waiting bool, env ...string) error {
	return e.expectRefusedCallFrom(e.Lab.UpdateVM(), label, service, logWant, waiting, env...)
}

// expectRefusedCallFrom is expectRefusedCall made by domain.
func (e *Env) expectRefusedCallFrom(domain, label, service string, logWant string, waiting bool, env ...string) error {
	return e.unchangedBy(label, nil, func() error {
		marks := e.logMarks()
		stream, err := e.honestStream()
		if err != nil {
			return err
		}
		code, stderr, err := e.callFrom(domain, service, stream, env...)
		if err != nil {
			return err
		}
		if code != 126 {
			return fmt.Errorf("want exit 126 (refused), got %d: %s", code, firstLines(stderr, 2))
		}
		if logWant != "" && !strings.Contains(e.logSince(marks), logWant) {
			return fmt.Errorf("dom0's log does not say %q", logWant)
		}
		if waiting && !e.sessionWaiting() {
			return fmt.Errorf("the refused call consumed dom0's live session")
		}
		return nil
	})
}

// logSince is what dom0's logs gained since marks.
func (e *Env) logSince(marks map[string]int64) string {
	var b strings.Builder
	for _, p := range dom0Logs {
		data, _ := os.ReadFile(e.dom0Path(p))
		if m := marks[p]; int64(len(data)) >= m {
			b.Write(data[m:])
		}
	}
	return b.String()
}

// honestStream is a delivery the service would accept (the current
// metadata, no packages): what a rogue caller sends to make a refusal mean
// something.
func (e *Env) honestStream() ([]byte, error) {
	files, err := e.currentDelivery()
	if err != nil {
		return nil, err
	}
	s := new(Stream)
	for _, f := range files {
		s.File(f.name, f.data)
	}
	return s.End().Bytes(), nil
}

var callRows = []Row{
	{ID: "C1", Group: "calls", Attack: "a VM other than the UpdateVM calls PedOS.ReceiveUpdates", run: func(e *Env) (string, error) {
		s, err := e.liveSession(time.Time{})
		if err != nil {
			return "", err
		}
		// The lab's other VM, with the live session's id (as if it had
		// learnt it) and a delivery dom0 would accept from the UpdateVM.
		// The shipped policy allows only the UpdateVM.
		if err := e.expectRefusedCallFrom(lab.AppVM, "policy denies it", "PedOS.ReceiveUpdates+"+s.ID, "call denied", true); err != nil {
			return "", err
		}
		// A policy that lets the VM through (a mistake, or a rule for
		// another purpose): the service itself refuses any caller but
		// updates.conf's UpdateVM (the second layer, C1).
		policy := append([]byte("PedOS.ReceiveUpdates  *  "+lab.AppVM+"  dom0  allow\n"), e.originals[e.dom0Path(policyFile)]...)
		if err := writeFileAtomic(e.dom0Path(policyFile), policy, 0o644); err != nil {
			return "", err
		}
		if err := e.expectRefusedCallFrom(lab.AppVM, "the service refuses it", "PedOS.ReceiveUpdates+"+s.ID,
			"domain "+lab.AppVM+" called PedOS.ReceiveUpdates, but only the UpdateVM "+e.Lab.UpdateVM()+" may deliver", true); err != nil {
			return "", err
		}
		return "the VM " + lab.AppVM + ", with the live session's id: refused by policy (126), and by the service when policy lets it through (126, before reading); session still waiting, dom0 unchanged", nil
	}},
	{ID: "C2", Group: "calls", Attack: "the UpdateVM calls outside a session, with a wrong id, replays a used id, comes after the session expired, or after the update that started it was killed", run: runC2},
	{ID: "C3", Group: "calls", Attack: "the caller sets QREXEC_REMOTE_DOMAIN and other QREXEC_* variables itself", run: func(e *Env) (string, error) {
		s, err := e.liveSession(time.Time{})
		if err != nil {
			return "", err
		}
		if err := e.setConf("updatevm", "sys-net"); err != nil {
			return "", err
		}
		forged := []string{"QREXEC_REMOTE_DOMAIN=sys-net", "QREXEC_SERVICE_ARGUMENT=" + s.ID, "QREXEC_REQUESTED_TARGET=dom0"}
		if err := e.expectRefusedCall("forged QREXEC_REMOTE_DOMAIN=sys-net", "PedOS.ReceiveUpdates+"+s.ID,
			"domain "+e.Lab.UpdateVM()+" called PedOS.ReceiveUpdates", true, forged...); err != nil {
			return "", err
		}
		return "the service saw the real caller " + e.Lab.UpdateVM() + " and refused (126); session still waiting, dom0 unchanged", nil
	}},
	{ID: "C4", Group: "calls", Attack: "bad service names and arguments: shell metacharacters, $, path climbing, overlong, control characters", run: func(e *Env) (string, error) {
		s, err := e.liveSession(time.Time{})
		if err != nil {
			return "", err
		}
		names := []string{
			"PedOS.ReceiveUpdates+$(touch /tmp/" + marker + ")",
			"PedOS.ReceiveUpdates+" + s.ID + ";touch /tmp/" + marker,
			"PedOS.ReceiveUpdates+`id`",
			"../../usr/bin/" + marker,
			"PedOS.ReceiveUpdates+" + strings.Repeat("a", 65),
			"PedOS.ReceiveUpdates+" + s.ID + "\nlevel=INFO msg=\"call allowed\"",
			"PedOS.ReceiveUpdates\u202e+" + marker,
			strings.Repeat("P", 60000),
		}
		// The daemon names a refused request in its log with Go quoting,
		// so no raw control or bidi character may reach it.
		untrusted := []string{"\nlevel=INFO msg=\"call allowed\"", "\u202e"}
		for _, n := range names {
			if err := e.unchangedBy(fmt.Sprintf("%.40q", n), untrusted, func() error {
				code, stderr, err := e.rogueCall(n, nil)
				if err == nil && code != 126 {
					err = fmt.Errorf("want exit 126 (refused), got %d: %s", code, firstLines(stderr, 2))
				}
				return err
			}); err != nil {
				return "", err
			}
		}
		if !e.sessionWaiting() {
			return "", fmt.Errorf("a refused call consumed dom0's live session")
		}
		return fmt.Sprintf("%d malformed requests refused (126) before policy; nothing ran, nothing created, session still waiting", len(names)), nil
	}},
	{ID: "C5", Group: "calls", Attack: "a policy file with a syntax error (must fail closed)", run: func(e *Env) (string, error) {
		if err := e.addDom0File("etc/pedos/policy.d/40-broken.policy", []byte("PedOS.ReceiveUpdates * @anyvm dom0 allow extra-field=\n!! not a rule\n")); err != nil {
			return "", err
		}
		if err := e.deliver(e.currentDelivery()); err != nil {
			return "", err
		}
		// The front end asks the policy before the download and stops.
		u, err := e.refused(attempt{label: "honest update under a broken policy", exit: -1})
		if err != nil {
			return "", err
		}
		if u.Report.Result != nil || !strings.Contains(u.Stderr, "40-broken.policy") {
			return "", fmt.Errorf("the update under a broken policy did not stop naming 40-broken.policy: %s", u.summary())
		}
		// The daemon itself refuses the UpdateVM's call, and its log names the file.
		s, err := e.liveSession(time.Time{})
		if err != nil {
			return "", err
		}
		if err := e.expectRefusedCall("call under a broken policy", "PedOS.ReceiveUpdates+"+s.ID, "40-broken.policy", true); err != nil {
			return "", err
		}
		return fmt.Sprintf("the update stopped before the download (exit %d, naming 40-broken.policy); the UpdateVM's own call refused (126), the daemon's log names the file; dom0 unchanged", u.Exit), nil
	}},
	{ID: "C6", Group: "calls", Attack: "a flood of half-open requests from the UpdateVM", run: runC6},
	{ID: "C7", Group: "calls", Attack: "the UpdateVM never answers, or answers after dom0's deadline", run: runC7},
}

func runC2(e *Env) (string, error) {
	wrong := strings.Repeat("0", 32)
	// No session at all.
	frontend.CancelSession(dom0.Config{Root: e.Lab.Root(lab.Dom0)})
	if err := e.expectRefusedCall("no session", "PedOS.ReceiveUpdates+"+wrong, "no update session is waiting", false); err != nil {
		return "", err
	}
	s, err := e.liveSession(time.Time{})
	if err != nil {
		return "", err
	}
	lastDigitOff := s.ID[:31] + map[bool]string{true: "1", false: "0"}[s.ID[31] == '0'] // a prefix compare would take it
	for _, id := range []string{wrong, s.ID[:31], s.ID + "0", strings.ToUpper(s.ID), lastDigitOff} {
		if err := e.expectRefusedCall(fmt.Sprintf("wrong id %q", id), "PedOS.ReceiveUpdates+"+id, "", true); err != nil {
			return "", err
		}
	}
	// No argument at all: the service stops at its usage check (exit 2).
	if err := e.unchangedBy("no session argument", nil, func() error {
		code, stderr, err := e.rogueCall("PedOS.ReceiveUpdates", nil)
		if err == nil && code != 2 && code != 126 {
			err = fmt.Errorf("want a refusal, got exit %d: %s", code, firstLines(stderr, 2))
		}
		return err
	}); err != nil {
		return "", err
	}
	// A delivery claims the session; the same id again is a replay.
	if code, stderr, err := e.rogueCall("PedOS.ReceiveUpdates+"+s.ID, new(Stream).End().Bytes()); err != nil || code == 126 {
		return "", fmt.Errorf("the first delivery with the live id: exit %d %v %s", code, err, firstLines(stderr, 2))
	}
	if err := e.expectRefusedCall("replayed id", "PedOS.ReceiveUpdates+"+s.ID, "no update session is waiting", false); err != nil {
		return "", err
	}
	expired, err := e.liveSession(time.Now().Add(-time.Second))
	if err != nil {
		return "", err
	}
	if err := e.expectRefusedCall("expired session", "PedOS.ReceiveUpdates+"+expired.ID, "the session expired", true); err != nil {
		return "", err
	}
	// The session of a pedos-dom0-update killed outright (SIGKILL): its
	// file stays until its deadline, but the kernel dropped the run's lock
	// on it.
	orphan, err := e.liveSession(time.Time{})
	if err != nil {
		return "", err
	}
	// As a pedos-dom0-update killed outright would: the kernel drops its
	// hold on the session.
	e.endUpdate()
	if err := e.expectRefusedCall("session of an ended update", "PedOS.ReceiveUpdates+"+orphan.ID, "no longer running", true); err != nil {
		return "", err
	}
	return "refused before reading: no session, 4 wrong ids and none, a replayed id, an expired session, the session of an update killed outright; dom0 unchanged", nil
}

// runC6: 40 connections to dom0's qrexec daemon that never send a request
// (the per-domain limit is 16). dom0's own calls into the UpdateVM keep
// working meanwhile; the daemon cuts the held ones at its request deadline
// and then serves the UpdateVM again: a delivery goes through.
func runC6(e *Env) (string, error) {
	holder := `import socket, time
conns = []
for i in range(40):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/run/pedos/qrexec/daemon.sock")
    conns.append(s)
start = time.time()
def closed(s):
    while True:
        s.settimeout(max(0.1, 25 - (time.time() - start)))
        try:
            if not s.recv(4096):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
cut = sum(1 for s in conns if closed(s))
print(cut, round(time.time() - start, 1))
`
	if err := e.writeVM(attackDir+"/hold.py", []byte(holder), 0o644); err != nil {
		return "", err
	}
	type held struct {
		out string
		err error
	}
	done := make(chan held, 1)
	go func() {
		out, err := e.mustExec(e.Lab.UpdateVM(), "python3", attackDir+"/hold.py")
		done <- held{out, err}
	}()
	time.Sleep(time.Second)
	u, err := e.update("--check-only")
	if err != nil {
		return "", err
	}
	if u.Exit != 0 && u.Exit != 100 {
		return "", fmt.Errorf("dom0's own calls failed during the flood: %s", u.summary())
	}
	h := <-done
	if h.err != nil {
		return "", h.err
	}
	var cut int
	var secs float64
	fmt.Sscan(h.out, &cut, &secs)
	if cut != 40 || secs > 20 {
		return "", fmt.Errorf("the daemon closed %d of 40 half-open connections in %.1f s (want all, by its 10 s request deadline)", cut, secs)
	}
	if err := e.deliver(e.currentDelivery()); err != nil {
		return "", err
	}
	if _, err := e.accepted("--downloadonly"); err != nil {
		return "", fmt.Errorf("the UpdateVM's delivery after the flood: %w", err)
	}
	return fmt.Sprintf("dom0's calls served during the flood (check-only exit %d); all 40 half-open connections closed by the daemon within %.1f s; the next delivery accepted", u.Exit, secs), nil
}

// runC7: with receive_timeout = 3s, an UpdateVM that never answers makes
// the front end give up at its deadline, cancel the session and kill the
// command; a delivery made after that is refused.
func runC7(e *Env) (string, error) {
	if err := e.setConf("receive_timeout", "3s"); err != nil {
		return "", err
	}
	stream, err := e.honestStream()
	if err != nil {
		return "", err
	}
	late := `#!/bin/sh
# attacker: answer after dom0's deadline, from a process dom0 cannot kill
case " $* " in *" --sync "*) exec cat >/dev/null ;; esac
for a; do case "$a" in --session=*) session=${a#--session=} ;; esac; done
setsid sh -c "sleep 6; qrexec-client-vm dom0 PedOS.ReceiveUpdates+$session </root/attack/stream; echo \$? >/root/attack/late.rc" </dev/null >/dev/null 2>&1 &
exec sleep 60
`
	if err := e.writeVM(attackDir+"/stream", stream, 0o644); err != nil {
		return "", err
	}
	if err := e.Lab.ReplaceProgram(e.Lab.UpdateVM(), "pedos-download-dom0-updates", []byte(late)); err != nil {
		return "", err
	}
	start := time.Now()
	u, err := e.refused(attempt{label: "UpdateVM silent past the deadline", exit: -1})
	took := time.Since(start)
	if err != nil {
		return "", err
	}
	if took > 15*time.Second {
		return "", fmt.Errorf("the front end gave up only after %.0f s (deadline 3.3 s)", took.Seconds())
	}
	if e.sessionWaiting() {
		return "", fmt.Errorf("the front end gave up but left its session open")
	}
	var rc []byte
	err = e.unchangedBy("late delivery", nil, func() error {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if rc, err = os.ReadFile(e.vmPath(attackDir + "/late.rc")); err == nil {
				return nil
			}
		}
		return fmt.Errorf("the late delivery did not finish")
	})
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(string(rc)) != "126" {
		return "", fmt.Errorf("the late delivery was not refused: exit %s", strings.TrimSpace(string(rc)))
	}
	summary := fmt.Sprintf("front end gave up after %.1f s (exit %d), session cancelled; the delivery sent 6 s later refused (126); dom0 unchanged", took.Seconds(), u.Exit)
	// The message must say that the UpdateVM missed dom0's deadline, not
	// suggest that it is not running.
	if !strings.Contains(u.Report.Message, "deadline") && !strings.Contains(u.Report.Message, "time") &&
		!strings.Contains(u.Report.Message, "did not answer") {
		return "", fmt.Errorf("%s; but the front end's message does not name the cause: %q", summary, u.Report.Message)
	}
	return summary, nil
}
