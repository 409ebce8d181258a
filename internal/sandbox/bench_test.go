package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fileCreationEnv names the directory and mode ("plain" or "confined") of
// fileCreationChild's run.
const fileCreationEnv = "PEDOS_SANDBOX_BENCH_CHILD"

// filesPerRound is how many 4 KiB files each child creates.
const filesPerRound = 20_000

// BenchmarkConfinedFileCreation measures what the sandbox costs the
// unpacker's hot path for small files (issue 2: 20,000 files of 4 KiB):
// a child process creates the files with the unpacker's system calls
// (openat with O_EXCL, write, utimensat, close), unconfined and then after
// Confine (Landlock, seccomp, rlimits), five rounds of each alternating, on
// tmpfs where there is one. It reports the median files/s of each and
// confined/plain.
func BenchmarkConfinedFileCreation(b *testing.B) {
	scratch := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		scratch = "/dev/shm"
	}
	rates := map[string][]float64{}
	for range b.N {
		for range 5 {
			for _, mode := range []string{"plain", "confined"} {
				dir, err := os.MkdirTemp(scratch, "pedos-sandbox-bench-")
				if err != nil {
					b.Fatal(err)
				}
				child := exec.Command(os.Args[0])
				child.Env = append(os.Environ(), fileCreationEnv+"="+mode+":"+dir)
				out, err := child.CombinedOutput()
				os.RemoveAll(dir)
				elapsed, ok := strings.CutPrefix(strings.TrimSpace(lastLine(string(out))), "elapsed-ns ")
				ns, perr := strconv.ParseInt(elapsed, 10, 64)
				if err != nil || !ok || perr != nil {
					b.Fatalf("%s child: %v %v:\n%s", mode, err, perr, out)
				}
				rates[mode] = append(rates[mode], filesPerRound/time.Duration(ns).Seconds())
			}
		}
	}
	plain, confined := median(rates["plain"]), median(rates["confined"])
	b.ReportMetric(plain, "plain-files/s")
	b.ReportMetric(confined, "confined-files/s")
	b.ReportMetric(confined/plain, "confined/plain")
}

// fileCreationChild is BenchmarkConfinedFileCreation's child process (TestMain).
func fileCreationChild(spec string) {
	mode, dir, _ := strings.Cut(spec, ":")
	if mode == "confined" {
		if _, err := Confine(Policy{WritableDir: dir}); err != nil {
			fmt.Println("confine:", err)
			os.Exit(1)
		}
	}
	dirFD, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	payload := make([]byte, 4096)
	times := [2]unix.Timespec{{Sec: 1}, {Sec: 2}}
	start := time.Now()
	for i := range filesPerRound {
		fd, err := unix.Openat(dirFD, fmt.Sprintf("pkg-%05d.rpm", i), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			_, err = unix.Write(fd, payload)
		}
		if err == nil {
			err = Futimens(fd, times)
		}
		if err == nil {
			err = unix.Close(fd)
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}
	fmt.Println("elapsed-ns", time.Since(start).Nanoseconds())
	os.Exit(0)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
