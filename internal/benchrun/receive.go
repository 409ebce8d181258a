package benchrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
)

// ReceiveResult compares one delivery received by pedos-receive-updates
// ("ours") and by the baseline pipeline of standard tools doing the
// reference implementation's steps, on the same stream in the same run.
type ReceiveResult struct {
	Case               string    `json:"case,omitempty"`
	Packages           int       `json:"packages"`
	Bytes              int64     `json:"bytes"`
	OursSeconds        float64   `json:"ours_s"`
	BaselineSeconds    float64   `json:"baseline_s"`
	Ratio              float64   `json:"ratio"` // baseline_s / ours_s: > 1 means ours is faster
	OursMiBps          float64   `json:"ours_mib_s"`
	BaselineMiBps      float64   `json:"baseline_mib_s"`
	OursPeakRSSMiB     float64   `json:"ours_peak_rss_mib"`
	BaselinePeakRSSMiB float64   `json:"baseline_peak_rss_mib"`
	Ours               []Process `json:"ours_processes"`
	Baseline           []Process `json:"baseline_processes"`
	// LoadAvg is the 1-minute load average when the measurement started:
	// on a shared machine, what the numbers were measured against.
	LoadAvg float64 `json:"load_avg"`
	Runs    int     `json:"runs"` // each side's figures are from its fastest run
}

// Receive measures one batch both ways, runs times each (alternating),
// and keeps each side's fastest run: on a shared machine the fastest run
// is the one least disturbed. Before each run the file system is synced,
// so that neither pays for writing back what came before it.
func (h *Harness) Receive(ctx context.Context, b Batch, runs int) (ReceiveResult, error) {
	r := ReceiveResult{Packages: len(b.Packages), Bytes: b.Bytes, LoadAvg: loadAvg(), Runs: runs}
	for range runs {
		syscall.Sync()
		ours, procs, err := h.receiveOurs(ctx, b)
		if err != nil {
			return r, fmt.Errorf("pedos-receive-updates, %d packages: %w", len(b.Packages), err)
		}
		if r.OursSeconds == 0 || ours.Seconds() < r.OursSeconds {
			r.OursSeconds, r.Ours = ours.Seconds(), procs
		}
		syscall.Sync()
		baseline, procs, err := h.receiveBaseline(ctx, b)
		if err != nil {
			return r, fmt.Errorf("baseline pipeline, %d packages: %w", len(b.Packages), err)
		}
		if r.BaselineSeconds == 0 || baseline.Seconds() < r.BaselineSeconds {
			r.BaselineSeconds, r.Baseline = baseline.Seconds(), procs
		}
	}
	mib := float64(b.Bytes) / (1 << 20)
	r.Ratio = r.BaselineSeconds / r.OursSeconds
	r.OursMiBps, r.BaselineMiBps = mib/r.OursSeconds, mib/r.BaselineSeconds
	r.OursPeakRSSMiB, r.BaselinePeakRSSMiB = peakMiB(r.Ours), peakMiB(r.Baseline)
	return r, nil
}

// receiveOurs streams the batch with qfile-agent into pedos-receive-updates
// in a fresh dom0 root, as qrexec would start it, and checks that it
// accepted and published every package. The service, and each process it
// starts (unpacker, rpmkeys, rpm, createrepo_c), runs under GNU time.
func (h *Harness) receiveOurs(ctx context.Context, b Batch) (time.Duration, []Process, error) {
	work, err := os.MkdirTemp(h.Work, "ours-")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "dom0")
	config, err := NewDom0Root(ctx, root, h.signer)
	if err != nil {
		return 0, nil, err
	}
	log, err := newRusageLog(work, "ours")
	if err != nil {
		return 0, nil, err
	}
	wrappers := filepath.Join(work, "wrappers")
	if err := os.Mkdir(wrappers, 0o755); err != nil {
		return 0, nil, err
	}
	for _, tool := range []string{"rpmkeys", "rpm", "createrepo_c"} {
		real, err := exec.LookPath(tool)
		if err != nil {
			return 0, nil, err
		}
		if err := log.wrapper(filepath.Join(wrappers, tool), tool, real); err != nil {
			return 0, nil, err
		}
	}
	unpacker := filepath.Join(wrappers, "qfile-dom0-unpacker")
	if err := log.wrapper(unpacker, "qfile-dom0-unpacker", h.program("qfile-dom0-unpacker")); err != nil {
		return 0, nil, err
	}
	session, release, err := frontend.NewSession(config, dom0.Session{Action: "upgrade"}, nil, io.Discard)
	if err != nil {
		return 0, nil, err
	}
	defer release()
	// The service itself is not started under GNU time: wait4 would add
	// its children's peaks to its own. Its new memory's high-water mark
	// (VmHWM) is its own, whoever started it.
	service := exec.CommandContext(ctx, h.program("pedos-receive-updates"), "--root", root, "--unpacker", unpacker,
		"--tool-path", wrappers+":/usr/bin:/bin:/usr/sbin:/sbin", session.ID)
	service.Env = []string{"PATH=/usr/bin:/bin", "QREXEC_REMOTE_DOMAIN=" + UpdateVM}
	elapsed, serviceHWM, err := h.transfer(ctx, b.Files(), service)
	if err != nil {
		return 0, nil, err
	}
	res, err := frontend.ReadResult(config, session.ID)
	if err != nil {
		return 0, nil, err
	}
	if !res.Accepted || len(res.Packages) != len(b.Packages) {
		return 0, nil, fmt.Errorf("the delivery was not accepted whole (%d of %d packages): %s", len(res.Packages), len(b.Packages), res.Error)
	}
	procs, err := log.processes()
	procs = append(procs, Process{Name: "pedos-receive-updates", Runs: 1, PeakMiB: float64(serviceHWM) / 1024, Seconds: elapsed.Seconds()})
	return elapsed, procs, err
}

// receiveBaseline does the reference implementation's steps with standard
// tools: the same stream into the same sandboxed unpacker, then one strict
// `rpmkeys -K` per package (a shell loop, as the reference starts one
// process per file), then createrepo_c over the staging directory.
func (h *Harness) receiveBaseline(ctx context.Context, b Batch) (time.Duration, []Process, error) {
	work, err := os.MkdirTemp(h.Work, "baseline-")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil {
		return 0, nil, err
	}
	log, err := newRusageLog(work, "baseline")
	if err != nil {
		return 0, nil, err
	}
	keyDB, err := h.keyDatabase(ctx, work)
	if err != nil {
		return 0, nil, err
	}
	staging := filepath.Join(work, "staging")
	if err := os.Mkdir(staging, 0o700); err != nil {
		return 0, nil, err
	}
	if err := os.Chown(staging, 65534, 65534); err != nil {
		return 0, nil, err
	}
	start := time.Now()
	unpack := log.command(ctx, "qfile-dom0-unpacker", h.program("qfile-dom0-unpacker"),
		unpackerUser, staging, "--only-regular-files")
	unpack.Env = []string{"PATH=/usr/bin:/bin", "UPDATES_MAX_FILES=" + strconv.Itoa(len(b.Files())),
		"UPDATES_MAX_BYTES=" + strconv.FormatInt(4<<30, 10)}
	if _, _, err := h.transfer(ctx, b.Files(), unpack); err != nil {
		return 0, nil, err
	}
	staged := make([]string, len(b.Packages))
	for i, p := range b.Packages {
		staged[i] = filepath.Join(staging, filepath.Base(p))
	}
	const strictCheck = `for f do rpmkeys --dbpath "$0" -K --define '_pkgverify_level all' --define '_pkgverify_flags 0x0' -- "$f" || exit 1; done`
	check := log.command(ctx, "rpmkeys", "/bin/sh", append([]string{"-c", strictCheck, keyDB}, staged...)...)
	check.Env = toolEnv(work)
	out, err := check.Output()
	if err != nil {
		return 0, nil, fmt.Errorf("rpmkeys -K: %w\n%s", err, out)
	}
	if got := strings.Count(string(out), ": digests signatures OK\n"); got != len(staged) {
		return 0, nil, fmt.Errorf("rpmkeys -K accepted %d of %d packages:\n%s", got, len(staged), out)
	}
	createrepo := log.command(ctx, "createrepo_c", "createrepo_c", "--quiet", "--no-database", staging)
	createrepo.Env = toolEnv(work)
	if out, err := createrepo.CombinedOutput(); err != nil {
		return 0, nil, fmt.Errorf("createrepo_c: %w\n%s", err, out)
	}
	elapsed := time.Since(start)
	procs, err := log.processes()
	return elapsed, procs, err
}

// keyDatabase imports the publisher key into a fresh rpm database for the
// baseline's rpmkeys (prepared before the clock starts, as dom0's rpm
// database already holds its keys).
func (h *Harness) keyDatabase(ctx context.Context, work string) (string, error) {
	key := filepath.Join(work, "publisher.asc")
	if err := os.WriteFile(key, h.signer.PublicKeyArmored(), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(work, ".rpmmacros"), []byte(rpmMacros), 0o644); err != nil {
		return "", err
	}
	db := filepath.Join(work, "keydb")
	return db, runTool(ctx, work, "rpmkeys", "--dbpath", db, "--import", key)
}

// transfer runs qfile-agent on files with its stdout into the receiver's
// stdin and the receiver's stdout (the status) into its stdin, as a qrexec
// call connects them. It returns how long both took and the receiver
// process's VmHWM in KiB, sampled while it runs.
func (h *Harness) transfer(ctx context.Context, files []string, receiver *exec.Cmd) (time.Duration, int64, error) {
	streamR, streamW, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		streamR.Close()
		streamW.Close()
		return 0, 0, err
	}
	agent := exec.CommandContext(ctx, h.program("qfile-agent"), files...)
	var agentErr, receiverErr bytes.Buffer
	agent.Stdin, agent.Stdout, agent.Stderr = statusR, streamW, &agentErr
	receiver.Stdin, receiver.Stdout, receiver.Stderr = streamR, statusW, &receiverErr
	start := time.Now()
	errReceiver := receiver.Start()
	var errAgent error
	var hwm *hwmSampler
	agentStarted := false
	if errReceiver == nil {
		hwm = sampleHWM(receiver.Process.Pid)
		errAgent = agent.Start()
		agentStarted = errAgent == nil
	}
	for _, f := range []*os.File{streamR, streamW, statusR, statusW} {
		f.Close()
	}
	var peak int64
	if errReceiver == nil {
		errReceiver = receiver.Wait()
		peak = hwm.stop()
	}
	if agentStarted {
		errAgent = agent.Wait()
	}
	elapsed := time.Since(start)
	if errReceiver != nil || errAgent != nil {
		return 0, 0, errors.Join(
			wrapOutput("receiver", errReceiver, receiverErr.String()),
			wrapOutput("qfile-agent", errAgent, agentErr.String()))
	}
	return elapsed, peak, nil
}

func wrapOutput(what string, err error, stderr string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w\n%s", what, err, strings.TrimSpace(stderr))
}
