package attack

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"pedos.dev/updates/internal/lab"
)

// daemonUsage is what a long-running daemon holds.
type daemonUsage struct {
	name                 string
	fds, threads, rssKiB int
}

func (d daemonUsage) String() string {
	return fmt.Sprintf("%s: %d fds, %d threads, %d KiB RSS", d.name, d.fds, d.threads, d.rssKiB)
}

// daemons measures the lab's qrexec daemon (dom0) and agents (the VMs).
func (e *Env) daemons() ([]daemonUsage, error) {
	var out []daemonUsage
	for _, domain := range []string{lab.Dom0, e.Lab.UpdateVM(), lab.AppVM} {
		for _, p := range e.Lab.State.Domains[domain].Services {
			if !p.Alive() {
				return nil, fmt.Errorf("%s's %s is not running", domain, p.Name)
			}
			u := daemonUsage{name: domain + " " + p.Name}
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.PID))
			if err != nil {
				return nil, err
			}
			u.fds = len(fds)
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID))
			if err != nil {
				return nil, err
			}
			for _, line := range strings.Split(string(status), "\n") {
				key, value, _ := strings.Cut(line, ":")
				f := strings.Fields(value)
				if len(f) == 0 {
					continue
				}
				switch key {
				case "Threads":
					u.threads, _ = strconv.Atoi(f[0])
				case "VmRSS":
					u.rssKiB, _ = strconv.Atoi(f[0])
				}
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// grew compares two measurements: descriptors must come back to where
// they were; threads may vary with the Go runtime's idle threads; memory
// grows while the Go heap settles (measured: the daemon from 5.6 to
// 10.5 MiB over the first 300 updates, then flat up to 750), so the bound
// is 8 MiB.
func grew(before, after []daemonUsage) []string {
	var growth []string
	for i := range before {
		b, a := before[i], after[i]
		if a.fds > b.fds || a.threads > b.threads+4 || a.rssKiB > b.rssKiB+8192 {
			growth = append(growth, fmt.Sprintf("%s -> %d fds, %d threads, %d KiB", b, a.fds, a.threads, a.rssKiB))
		}
	}
	return growth
}

var loadRows = []Row{
	{ID: "L1", Group: "load", Attack: "200 updates in a row (--downloadonly: delivery and publication, no dnf; 20 under go test): the daemons keep their descriptors, threads within 4 and memory within 8 MiB", run: runL1},
	{ID: "L2", Group: "load", Attack: "50 concurrent rogue qrexec calls from another VM while an update runs", run: runL2},
}

func runL1(e *Env) (string, error) {
	n := 200
	if e.form == Short {
		n = 20
	}
	if _, err := e.freshDelivery(); err != nil {
		return "", err
	}
	update := func() error {
		_, err := e.accepted("--downloadonly")
		return err
	}
	// Two updates first, so that what the daemons allocate once is there.
	for range 2 {
		if err := update(); err != nil {
			return "", err
		}
	}
	before, err := e.daemons()
	if err != nil {
		return "", err
	}
	procsBefore, err := e.processes()
	if err != nil {
		return "", err
	}
	start := time.Now()
	for i := range n {
		if err := update(); err != nil {
			return "", fmt.Errorf("update %d of %d: %w", i+1, n, err)
		}
	}
	took := time.Since(start)
	time.Sleep(time.Second) // the last call's goroutines end
	after, err := e.daemons()
	if err != nil {
		return "", err
	}
	for i := range before {
		e.notes = append(e.notes, fmt.Sprintf("before %s; after %d updates: %d fds, %d threads, %d KiB RSS", before[i], n, after[i].fds, after[i].threads, after[i].rssKiB))
	}
	if g := grew(before, after); len(g) > 0 {
		return "", fmt.Errorf("daemons grew over %d updates: %s", n, strings.Join(g, "; "))
	}
	procsAfter, err := e.processes()
	if err != nil {
		return "", err
	}
	for _, d := range []string{lab.Dom0, e.Lab.UpdateVM()} {
		e.notes = append(e.notes, fmt.Sprintf("processes in %s: %d before, %d after", d, len(procsBefore[d]), len(procsAfter[d])))
		if len(procsAfter[d]) > len(procsBefore[d]) {
			return "", fmt.Errorf("%s runs %d processes after %d updates, %d before", d, len(procsAfter[d]), n, len(procsBefore[d]))
		}
	}
	return fmt.Sprintf("%d deliveries accepted in a row (%.2f s each); the qrexec daemon and agents kept their descriptors, their threads within 4 and memory within 8 MiB", n, took.Seconds()/float64(n)), nil
}

// runL2: an honest update (dnf in the UpdateVM and in dom0) while the lab's
// other VM makes 50 calls at once, during the update's sync and resolution:
// to the receive service with ids that are not the session's, and to
// services that do not exist. The policy refuses them all, or the daemon
// drops those over the VM's limit of concurrent calls; the UpdateVM's calls
// (the update's own delivery) must still get through. (C6 floods from the
// UpdateVM itself.)
func runL2(e *Env) (string, error) {
	if err := e.converge(); err != nil {
		return "", err
	}
	if _, err := e.publishPending(lab.PublishOptions{Specs: []string{"hello-" + e.nextVersion() + "-1"}}); err != nil {
		return "", err
	}
	before, err := e.daemons()
	if err != nil {
		return "", err
	}
	codes := make([]int, 50)
	var wg sync.WaitGroup
	updated := make(chan Update, 1)
	failed := make(chan error, 1)
	go func() {
		u, err := e.honest("-y")
		updated <- u
		failed <- err
	}()
	time.Sleep(300 * time.Millisecond)
	for i := range codes {
		service := fmt.Sprintf("PedOS.ReceiveUpdates+%032x", i)
		if i%2 == 1 {
			service = fmt.Sprintf("PedOS.NoSuchService%d", i)
		}
		wg.Go(func() {
			codes[i], _, _ = e.callFrom(lab.AppVM, service, []byte("rogue"))
		})
	}
	wg.Wait()
	u, err := <-updated, <-failed
	if err != nil {
		return "", fmt.Errorf("the update during the flood: %w", err)
	}
	e.pending = false
	counts := map[int]int{}
	for _, c := range codes {
		counts[c]++
	}
	for c := range counts {
		if c != 126 && c != 127 && c != 125 {
			return "", fmt.Errorf("a rogue call ended with %d: %v", c, counts)
		}
	}
	time.Sleep(time.Second)
	after, err := e.daemons()
	if err != nil {
		return "", err
	}
	if g := grew(before, after); len(g) > 0 {
		return "", fmt.Errorf("daemons grew during the flood: %s", strings.Join(g, "; "))
	}
	e.notes = append(e.notes, fmt.Sprintf("rogue calls from %s: %d refused (126: by policy or by the service), %d no such service (127), %d dropped over the per-domain limit (125)", lab.AppVM, counts[126], counts[127], counts[125]))
	return fmt.Sprintf("the update succeeded (exit %d, %d package(s)) while 50 rogue calls were refused or dropped; no daemon growth", u.Exit, len(u.Report.Result.Packages)), nil
}
