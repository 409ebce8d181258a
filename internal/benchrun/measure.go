package benchrun

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// gnuTime is the launcher that measures each process's peak RSS.
const gnuTime = "/usr/bin/time"

// Process is one program's measured peak: the highest RSS of any of its
// runs, how many runs there were, and their total wall time.
type Process struct {
	Name    string  `json:"name"`
	Runs    int     `json:"runs"`
	PeakMiB float64 `json:"peak_rss_mib"`
	Seconds float64 `json:"seconds"`
}

// rusageLog collects GNU time's records ("NAME PEAK_KIB SECONDS" lines,
// appended by every measured process) in one file.
type rusageLog struct{ path string }

// command runs name with args under GNU time, recording into the log as
// label.
func (l rusageLog) command(ctx context.Context, label, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, gnuTime, append([]string{"-a", "-o", l.path, "-f", label + " %M %e", name}, args...)...)
}

// wrapper writes an executable script at path that runs program under GNU
// time as label: pedos-receive-updates finds it first in its --tool-path
// (or as --unpacker), so each process it starts is measured from a small
// parent.
func (l rusageLog) wrapper(path, label, program string) error {
	script := fmt.Sprintf("#!/bin/sh\nexec %s -a -o '%s' -f '%s %%M %%e' '%s' \"$@\"\n", gnuTime, l.path, label, program)
	return os.WriteFile(path, []byte(script), 0o755)
}

// processes reads the log: one Process per label, in order of first
// appearance. GNU time writes "Command exited with non-zero status N"
// before a record for a failed run; those lines are skipped.
func (l rusageLog) processes() ([]Process, error) {
	f, err := os.Open(l.path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var procs []Process
	index := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		kib, err1 := strconv.ParseFloat(fields[1], 64)
		seconds, err2 := strconv.ParseFloat(fields[2], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		i, seen := index[fields[0]]
		if !seen {
			i = len(procs)
			index[fields[0]] = i
			procs = append(procs, Process{Name: fields[0]})
		}
		p := &procs[i]
		p.Runs++
		p.PeakMiB = max(p.PeakMiB, kib/1024)
		p.Seconds += seconds
	}
	return procs, sc.Err()
}

// peakMiB is the highest peak among procs.
func peakMiB(procs []Process) float64 {
	peak := 0.0
	for _, p := range procs {
		peak = max(peak, p.PeakMiB)
	}
	return peak
}

// newRusageLog makes an empty log in dir.
func newRusageLog(dir, name string) (rusageLog, error) {
	l := rusageLog{path: filepath.Join(dir, name+".rusage")}
	if err := os.Remove(l.path); err != nil && !os.IsNotExist(err) {
		return l, err
	}
	return l, nil
}

// hwmSampler reads a process's VmHWM (the peak RSS of its memory since its
// execve) every 10 ms until stopped. The mark only rises, so the last
// sample misses at most the final 10 ms of the process's life.
type hwmSampler struct {
	peak       atomic.Int64 // KiB
	done, over chan struct{}
}

func sampleHWM(pid int) *hwmSampler {
	s := &hwmSampler{done: make(chan struct{}), over: make(chan struct{})}
	status := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		defer close(s.over)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if kib := readHWM(status); kib > s.peak.Load() {
				s.peak.Store(kib)
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak in KiB.
func (s *hwmSampler) stop() int64 {
	close(s.done)
	<-s.over
	return s.peak.Load()
}

// readHWM returns the VmHWM line of a /proc/PID/status file (0 if the
// process is gone or a zombie).
func readHWM(status string) int64 {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kib
		}
	}
	return 0
}

// loadAvg is the 1-minute load average (0 if unreadable).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), " ")
	v, _ := strconv.ParseFloat(first, 64)
	return v
}
