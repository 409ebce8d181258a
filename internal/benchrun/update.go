package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"pedos.dev/updates/internal/frontend"
	"pedos.dev/updates/internal/lab"
)

// Phases of a whole update, in order. Each is bounded by an observable
// moment (see phaseMarks): there is no timestamp inside the programs.
var Phases = []string{"sync", "download", "transfer", "verify", "publish", "dnf"}

// ourPhases are the project's own work; download is the UpdateVM's dnf
// (metadata, resolution, the mirror download) and dnf is dom0's install.
var ourPhases = []string{"sync", "transfer", "verify", "publish"}

// UpdateResult is one pedos-dom0-update -y upgrading Packages packages.
type UpdateResult struct {
	Packages     int                `json:"packages"`
	Bytes        int64              `json:"bytes"`
	TotalSeconds float64            `json:"total_s"`
	Phases       map[string]float64 `json:"phases"`
	LoadAvg      float64            `json:"load_avg"` // as in ReceiveResult
}

// OursSeconds is the time spent in our phases.
func (u UpdateResult) OursSeconds() float64 {
	s := 0.0
	for _, p := range ourPhases {
		s += u.Phases[p]
	}
	return s
}

// OursShare is our phases' share of the total.
func (u UpdateResult) OursShare() float64 { return u.OursSeconds() / u.TotalSeconds }

// PhaseSummary is the phases in their order, for a progress line:
// "sync 0.12 s, download 0.30 s, ...".
func (u UpdateResult) PhaseSummary() string {
	words := make([]string, len(Phases))
	for i, p := range Phases {
		words[i] = fmt.Sprintf("%s %.2f s", p, u.Phases[p])
	}
	return strings.Join(words, ", ")
}

// Updates brings up one lab whose dom0 has max(sizes) packages installed
// (upd0000-1.0-1 …), then for each size n publishes a new version of the
// first n packages (n·bytes/max(sizes) bytes in all) and times
// pedos-dom0-update -y, which upgrades exactly those n.
func (h *Harness) Updates(ctx context.Context, sizes []int, bytes int64) ([]UpdateResult, error) {
	largest := 0
	for _, n := range sizes {
		largest = max(largest, n)
	}
	base := make([]string, largest)
	for i := range base {
		base[i] = fmt.Sprintf("upd%04d-1.0-1", i)
	}
	dir := h.LabDir
	if dir == "" {
		dir = filepath.Join(h.Work, "lab")
	}
	h.logf("update: bringing a lab up in %s with %d packages in dom0", dir, largest)
	l, err := lab.Up(ctx, lab.Options{Dir: dir, BinDir: h.Bin, Base: base})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := l.Down(); err != nil {
			h.logf("update: stopping the lab: %v", err)
		}
		os.RemoveAll(dir)
	}()
	var results []UpdateResult
	for round, n := range sizes {
		payloads := Sizes(n, bytes*int64(n)/int64(largest), h.Seed+uint64(round))
		specs := make([]string, n)
		total := int64(0)
		for i := range specs {
			specs[i] = fmt.Sprintf("upd%04d-%d.0-1 size=%d", i, round+2, payloads[i])
			total += int64(payloads[i])
		}
		h.logf("update: publishing a new version of %d package(s), %d MiB", n, total>>20)
		if _, err := l.Publish(lab.PublishOptions{Specs: specs}); err != nil {
			return results, err
		}
		u, err := h.timeUpdate(ctx, l, n)
		if err != nil {
			return results, fmt.Errorf("update of %d packages: %w", n, err)
		}
		u.Bytes = total
		h.logf("update: %d package(s) in %.1f s: %s", n, u.TotalSeconds, u.PhaseSummary())
		results = append(results, u)
	}
	return results, nil
}

// timeUpdate runs pedos-dom0-update --json -y in dom0, timestamps each
// line it prints and watches dom0's repository directory, and splits the
// run into phases.
func (h *Harness) timeUpdate(ctx context.Context, l *lab.Lab, n int) (UpdateResult, error) {
	// The unpacker's syncfs would otherwise pay for whatever the publish
	// before left unwritten.
	syscall.Sync()
	load := loadAvg()
	var stdout bytes.Buffer
	lines := &lineClock{}
	watch := watchBuild(l.Domain(lab.Dom0).Path("/var/lib/PedOS"))
	start := time.Now()
	code, err := l.Run(ctx, lab.Dom0, lab.Command{Args: []string{"pedos-dom0-update", "--json", "-y"}, Stdout: &stdout, Stderr: lines})
	end := time.Now()
	built, indexed := watch.stop()
	if err != nil {
		return UpdateResult{}, err
	}
	var rep frontend.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil || code != 0 || rep.Result == nil ||
		!rep.Result.Accepted || len(rep.Result.Packages) != n {
		return UpdateResult{}, fmt.Errorf("pedos-dom0-update exit %d, want %d packages accepted and installed:\n%s", code, n, lines.text())
	}
	marks := []time.Time{
		start,
		lines.first("==> Asking "),
		lines.firstMatch(downloadedLine),
		built,
		indexed,
		lines.first("==> Running dnf"),
		end,
	}
	u := UpdateResult{Packages: n, LoadAvg: load, TotalSeconds: end.Sub(start).Seconds(), Phases: map[string]float64{}}
	for i, phase := range Phases {
		from, to := marks[i], marks[i+1]
		if from.IsZero() || to.IsZero() || to.Before(from) {
			return u, fmt.Errorf("phase %s: its start or end was not observed:\n%s", phase, lines.text())
		}
		u.Phases[phase] = to.Sub(from).Seconds()
	}
	return u, nil
}

// downloadedLine is what the UpdateVM's program prints when dnf is done, as the front end
// shows it: marked with the UpdateVM's name.
var downloadedLine = regexp.MustCompile(`^\S+: Downloaded [0-9]+ package\(s\)$`)

// lineClock is an io.Writer that notes when each line arrived.
type lineClock struct {
	mu      sync.Mutex
	partial []byte
	lines   []stampedLine
}

type stampedLine struct {
	at   time.Time
	text string
}

func (c *lineClock) Write(p []byte) (int, error) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		c.lines = append(c.lines, stampedLine{now, string(c.partial[:i])})
		c.partial = c.partial[i+1:]
	}
}

func (c *lineClock) firstMatch(re *regexp.Regexp) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if re.MatchString(l.text) {
			return l.at
		}
	}
	return time.Time{}
}

func (c *lineClock) first(prefix string) time.Time {
	return c.firstMatch(regexp.MustCompile("^" + regexp.QuoteMeta(prefix)))
}

func (c *lineClock) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, l := range c.lines {
		fmt.Fprintf(&b, "%s %s\n", l.at.Format("15:04:05.000"), l.text)
	}
	return b.String()
}

// buildWatch polls dom0's /var/lib/PedOS from the host for the receive
// service's new cached repository (.updates-*, made when the unpacker has
// finished) and for createrepo_c's output in it (.repodata or repodata,
// once every package is verified): the boundaries transfer → verify →
// publish. Polling every 10 ms is far finer than those phases.
type buildWatch struct {
	dir              string
	built, indexed   time.Time
	done, terminated chan struct{}
}

func watchBuild(dir string) *buildWatch {
	w := &buildWatch{dir: dir, done: make(chan struct{}), terminated: make(chan struct{})}
	go w.poll()
	return w
}

func (w *buildWatch) poll() {
	defer close(w.terminated)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	build := ""
	for {
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
		if build == "" {
			entries, _ := os.ReadDir(w.dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".updates-") {
					build, w.built = filepath.Join(w.dir, e.Name()), time.Now()
				}
			}
			continue
		}
		for _, sub := range []string{".repodata", "repodata"} {
			if _, err := os.Stat(filepath.Join(build, sub)); err == nil || !errors.Is(err, os.ErrNotExist) {
				w.indexed = time.Now()
				return
			}
		}
	}
}

// stop ends the polling and returns the two moments (zero if unseen).
func (w *buildWatch) stop() (built, indexed time.Time) {
	close(w.done)
	<-w.terminated
	return w.built, w.indexed
}
