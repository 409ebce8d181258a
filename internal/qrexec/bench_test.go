package qrexec_test

import (
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pedos.dev/updates/internal/qrexec"
	"pedos.dev/updates/internal/testbin"
)

// benchBytes is the size of one transfer: 1 GiB, or PEDOS_BENCH_BYTES.
func benchBytes(b *testing.B) int64 {
	if s := os.Getenv("PEDOS_BENCH_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1 << 30
}

// BenchmarkThroughput sends benchBytes through a call from vm1 to dom0's
// cat service over the Unix transport (client → daemon → cat → daemon →
// client), and, as the baseline in the same run, through a plain cat whose
// stdin and stdout are Unix socket pairs (2 kernel hops). A call has 6 hops
// through 3 processes, so the chain of 5 cats through pipes (6 hops) is
// measured too, for context. Run with -benchtime=1x.
//
// CPU time says why a ratio is what it is: "all" counts every process of a
// transfer, this one (which feeds and drains it) included, and wall time
// cannot be less than that divided by the processors, so
// call/cat-ratio-cpu-bound is the best ratio the CPU the call used allows.
func BenchmarkThroughput(b *testing.B) {
	lab := newTestLab(b, transports[0])
	n := benchBytes(b)
	b.SetBytes(n)
	var baseline, chain, call time.Duration
	// CPU time of cat, and of client, daemon and service; "all" adds ours.
	var baselineCPU, callCPU, baselineAllCPU, callAllCPU time.Duration
	var clientRSS int64
	for range b.N {
		cat := exec.Command("cat")
		ours := selfCPU(b)
		baseline += timeTransfer(b, cat, n, true)
		baselineCPU += cat.ProcessState.UserTime() + cat.ProcessState.SystemTime()
		baselineAllCPU += cat.ProcessState.UserTime() + cat.ProcessState.SystemTime() + selfCPU(b) - ours
		chain += timeTransfer(b, exec.Command("/bin/sh", "-c", "cat | cat | cat | cat | cat"), n, false)
		client := exec.Command(testbin.Path(b, "qrexec-client-vm"), "dom0", "test.Echo")
		client.Env = append(os.Environ(), "PEDOS_QREXEC_SOCKET="+lab.callerAddr)
		daemonCPU := cpuTime(b, lab.daemon.Process.Pid)
		ours = selfCPU(b)
		call += timeTransfer(b, client, n, false)
		used := client.ProcessState.UserTime() + client.ProcessState.SystemTime() + cpuTime(b, lab.daemon.Process.Pid) - daemonCPU
		callCPU += used
		callAllCPU += used + selfCPU(b) - ours
		clientRSS = max(clientRSS, client.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
	}
	mbps := func(d time.Duration) float64 { return float64(n) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(baseline), "cat-MB/s")
	b.ReportMetric(mbps(call), "call-MB/s")
	b.ReportMetric(mbps(chain), "cat-chain-MB/s")
	b.ReportMetric(baseline.Seconds()/call.Seconds(), "call/cat-ratio")
	b.ReportMetric(chain.Seconds()/call.Seconds(), "call/cat-chain-ratio")
	// CPU seconds per GiB depend less on the machine's load than wall time.
	gib := float64(n) * float64(b.N) / (1 << 30)
	b.ReportMetric(baselineCPU.Seconds()/gib, "cat-cpu-s/GiB")
	b.ReportMetric(callCPU.Seconds()/gib, "call-cpu-s/GiB")
	b.ReportMetric(baselineAllCPU.Seconds()/gib, "cat-all-cpu-s/GiB")
	b.ReportMetric(callAllCPU.Seconds()/gib, "call-all-cpu-s/GiB")
	callWallBound := callAllCPU.Seconds() / float64(runtime.NumCPU())
	b.ReportMetric(baseline.Seconds()/callWallBound, "call/cat-ratio-cpu-bound")
	b.ReportMetric(float64(clientRSS), "client-maxrss-KiB")
	b.ReportMetric(float64(peakRSS(b, lab.daemon.Process.Pid)), "daemon-peakrss-KiB")
}

// selfCPU is the CPU time this process has used.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timeTransfer runs cmd with n bytes on its stdin, reads its stdout to the
// end, and returns the time taken. With sockets, stdin and stdout are Unix
// socket pairs, otherwise pipes.
func timeTransfer(b *testing.B, cmd *exec.Cmd, n int64, sockets bool) time.Duration {
	var in io.WriteCloser
	var out io.ReadCloser
	if sockets {
		var ours [2]*os.File
		for i, theirs := range []**os.File{new(*os.File), new(*os.File)} {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			ours[i], *theirs = os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
			defer (*theirs).Close()
			if i == 0 {
				cmd.Stdin = *theirs
			} else {
				cmd.Stdout = *theirs
			}
		}
		in, out = ours[0], ours[1]
	} else {
		var err1, err2 error
		in, err1 = cmd.StdinPipe()
		out, err2 = cmd.StdoutPipe()
		if err1 != nil || err2 != nil {
			b.Fatal(err1, err2)
		}
	}
	block := make([]byte, 256<<10)
	for i := range block {
		block[i] = byte(i * 7)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if sockets {
		cmd.Stdin.(*os.File).Close()
		cmd.Stdout.(*os.File).Close()
	}
	go func() {
		for left := n; left > 0; left -= int64(len(block)) {
			if _, err := in.Write(block[:min(left, int64(len(block)))]); err != nil {
				break
			}
		}
		in.Close()
	}()
	got, copyErr := io.CopyBuffer(io.Discard, out, make([]byte, 256<<10))
	if err := cmd.Wait(); err != nil || copyErr != nil || got != n {
		b.Fatalf("%s: %d of %d bytes (%v), %v", cmd.Path, got, n, copyErr, err)
	}
	return time.Since(start)
}

// cpuTime is the CPU time a process and its waited-for children used:
// utime, stime, cutime and cstime of /proc/PID/stat.
func cpuTime(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state is
	// the first, utime the 12th.
	_, rest, _ := strings.Cut(string(stat), ") ")
	fields := strings.Fields(rest)
	var ticks int64
	for _, f := range fields[11:15] {
		n, _ := strconv.ParseInt(f, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

// peakRSS is a process's peak resident set (VmHWM), KiB.
func peakRSS(b *testing.B, pid int) int64 {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kib
		}
	}
	return 0
}

// BenchmarkEmptyCalls measures calls per second of an empty dom0 service
// over the Unix transport: each call is a connection, the policy reloaded,
// the service file looked up, a process run. The client is in this process
// ("in-process") or the qrexec-client-vm binary ("binary"); the baseline is
// running the service script directly, alone and next to every call (the
// ratio, which holds however busy the machine is).
func BenchmarkEmptyCalls(b *testing.B) {
	lab := newTestLab(b, transports[0])
	direct := func() error { return exec.Command(lab.serviceDirs["dom0"] + "/test.Empty").Run() }
	timed := func(b *testing.B, f func() error) time.Duration {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	run := func(b *testing.B, call func() error) {
		var calls, directs time.Duration
		for range b.N {
			directs += timed(b, direct)
			calls += timed(b, call)
		}
		b.ReportMetric(float64(b.N)/calls.Seconds(), "calls/s")
		b.ReportMetric(directs.Seconds()/calls.Seconds(), "calls/direct-exec-ratio")
	}
	b.Run("baseline-direct-exec", func(b *testing.B) {
		var directs time.Duration
		for range b.N {
			directs += timed(b, direct)
		}
		b.ReportMetric(float64(b.N)/directs.Seconds(), "calls/s")
	})
	b.Run("in-process", func(b *testing.B) {
		run(b, func() error {
			conn, err := qrexec.Dial(lab.callerAddr)
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = call(conn, qrexec.MsgCall, qrexec.Request{Target: "dom0", Service: "test.Empty"}, qrexec.Streams{})
			return err
		})
	})
	b.Run("binary", func(b *testing.B) {
		client := testbin.Path(b, "qrexec-client-vm")
		run(b, func() error {
			cmd := exec.Command(client, "dom0", "test.Empty")
			cmd.Env = append(os.Environ(), "PEDOS_QREXEC_SOCKET="+lab.callerAddr)
			return cmd.Run()
		})
	})
}
