package updatevm

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// downloadProgressEvery is how often a download's progress is told. dnf
// prints a line only when a package is complete (it has no terminal here),
// so a large package on a slow mirror would leave the person waiting in
// dom0 without a word for minutes (overview.md: progress while
// downloading).
var downloadProgressEvery = 5 * time.Second

// downloadQuietAfter is how long nothing may arrive, and dnf say nothing,
// before the person is told so (and again as long as it lasts): a mirror
// that stopped sending leaves dnf silent until its own timeouts end it,
// minutes later.
var downloadQuietAfter = 30 * time.Second

// downloadWatch tells how much of a download has arrived in dir, while dnf
// downloads into it, every downloadProgressEvery when it changed, and when
// nothing arrives there nor in the metadata cache (dnf fetches repodata
// there first, without a word until a file is whole). Its Writer passes
// dnf's output on, reading the transaction's size from it.
type downloadWatch struct {
	dir   string
	cache string
	stop  chan struct{}
	done  sync.WaitGroup

	mu    sync.Mutex // one write to log at a time; guards the fields below
	log   io.Writer
	total int64  // bytes, from dnf's "Total download size:" line; 0 until then
	line  []byte // dnf's output since its last newline: a report now would split it
	spoke bool   // dnf wrote since the last tick
}

func watchDownload(log io.Writer, dir, cache string) *downloadWatch {
	w := &downloadWatch{log: log, dir: dir, cache: cache, stop: make(chan struct{})}
	w.done.Add(1)
	go w.run()
	return w
}

func (w *downloadWatch) run() {
	defer w.done.Done()
	tick := time.NewTicker(downloadProgressEvery)
	defer tick.Stop()
	var told, seen, cached int64
	quietSince, toldQuiet := time.Now(), time.Time{}
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		got, inCache, now := treeBytes(w.dir), treeBytes(w.cache), time.Now()
		w.mu.Lock()
		if got != seen || inCache != cached || w.spoke {
			seen, cached, w.spoke, quietSince = got, inCache, false, now
		}
		if quiet := now.Sub(quietSince); quiet >= downloadQuietAfter && now.Sub(toldQuiet) >= downloadQuietAfter && len(w.line) == 0 {
			toldQuiet = now
			fmt.Fprintf(w.log, "Waiting: nothing received for %s (dnf gives up on a mirror that sends nothing after its own timeouts)\n", quiet.Round(time.Second))
		}
		if got != told && len(w.line) == 0 {
			told = got
			if w.total > 0 {
				fmt.Fprintf(w.log, "Downloading: %s of %s received (%d %%)\n", mib(got), mib(w.total), min(100, got*100/w.total))
			} else {
				fmt.Fprintf(w.log, "Downloading: %s received\n", mib(got))
			}
		}
		w.mu.Unlock()
	}
}

// Stop ends the reports; none follows its return.
func (w *downloadWatch) Stop() {
	close(w.stop)
	w.done.Wait()
}

// Write passes dnf's output on.
func (w *downloadWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.spoke = true
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if size, ok := strings.CutPrefix(string(w.line[:i]), "Total download size: "); ok {
			w.total = dnfSize(size)
		}
		w.line = w.line[i+1:]
	}
	if len(w.line) > 4096 { // no line of interest is that long; still inside one
		w.line = append(w.line[:0], w.line[len(w.line)-1])
	}
	return w.log.Write(p)
}

// dnfSize reads a size as dnf prints it ("1.7 k", "99 M": powers of 1024);
// 0 when it cannot.
func dnfSize(s string) int64 {
	number, unit, _ := strings.Cut(strings.TrimSpace(s), " ")
	x, err := strconv.ParseFloat(number, 64)
	shift, ok := map[string]int{"": 0, "k": 10, "M": 20, "G": 30, "T": 40}[unit]
	if err != nil || !ok || x < 0 {
		return 0
	}
	return int64(x * float64(int64(1)<<shift))
}

// treeBytes is the size of the regular files below dir (dnf's download
// directory is flat; its cache is not).
func treeBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// mib is a size in MiB, with one decimal.
func mib(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
