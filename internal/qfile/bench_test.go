package qfile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"pedos.dev/updates/internal/sandbox"
)

// BenchmarkTransferLarge: 1 GiB as 10 files of 100 MiB, qfile-agent → qfile-dom0-unpacker
// through a pipe into a temporary directory, in the dom0 update mode.
func BenchmarkTransferLarge(b *testing.B) { benchmarkTransfer(b, 10, 100<<20) }

// BenchmarkTransferSmall: 20,000 files of 4 KiB, the same way.
func BenchmarkTransferSmall(b *testing.B) { benchmarkTransfer(b, 20000, 4<<10) }

// benchmarkTransfer runs benchmarkTransferIn on the disk (TMPDIR) and on tmpfs (/dev/shm).
// On a disk the unpacker's final syncfs is bound by the disk's write speed; on tmpfs the
// transfer itself is measured, as the reference figure (CRC-bound) is.
func benchmarkTransfer(b *testing.B, files, size int) {
	b.Run("disk", func(b *testing.B) { benchmarkTransferIn(b, b.TempDir(), files, size, false) })
	b.Run("tmpfs", func(b *testing.B) {
		var fsStat unix.Statfs_t
		if err := unix.Statfs("/dev/shm", &fsStat); err != nil || fsStat.Type != unix.TMPFS_MAGIC {
			b.Skip("/dev/shm is not a tmpfs here")
		}
		dir, err := os.MkdirTemp("/dev/shm", "qfile-bench-")
		mustDo(b, err)
		b.Cleanup(func() { os.RemoveAll(dir) })
		benchmarkTransferIn(b, dir, files, size, true)
	})
}

// benchmarkTransferIn times the real binaries (the unpacker's time includes its final syncfs)
// and, in the same run, the baseline `tar -cf - | tar -xf -` of the same files, without and
// with a final `sync -f`, all in scratch; and the kernel's own ceiling: this process writing
// the same files from memory with the unpacker's system calls and nothing else (no stream, no
// sandbox), on tmpfs only (on a disk, what the previous runs left to write back and discard
// decides it). It reports MiB/s, files/s, each process's peak RSS (GNU time), and the speed
// relative to each baseline (> 1: faster than tar; ≤ 1 against the ceiling).
func benchmarkTransferIn(b *testing.B, scratch string, files, size int, bare bool) {
	src := filepath.Join(scratch, "src")
	mustDo(b, os.Mkdir(src, 0o755))
	paths := make([]string, files)
	for i := range paths {
		paths[i] = filepath.Join(src, fmt.Sprintf("pkg-%05d.rpm", i))
		writeFile(b, paths[i], size, uint64(i), 0o644)
	}
	env := []string{fmt.Sprintf("UPDATES_MAX_FILES=%d", files), fmt.Sprintf("UPDATES_MAX_BYTES=%d", files*size)}
	work := filepath.Join(scratch, "work")
	mustDo(b, os.Mkdir(work, 0o755))
	var qfileTime, tarTime, tarSyncTime, bareTime time.Duration
	var agentRSS, unpackerRSS int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dst, tarDst := filepath.Join(work, "qfile"), filepath.Join(work, "tar")
		mustDo(b, os.Mkdir(dst, 0o755), os.Mkdir(tarDst, 0o755))
		// Neither side pays for writing back what came before it (the source files, the
		// other side's output): the unpacker's syncfs would, and tar would compete with it.
		syscall.Sync()
		b.StartTimer()
		res := transfer(b, dst, env, []string{"--only-regular-files"}, paths...)
		b.StopTimer()
		res.wantSuccess(b)
		qfileTime += res.elapsed
		agentRSS, unpackerRSS = max(agentRSS, res.agentRSS), max(unpackerRSS, res.unpackerRSS)

		syscall.Sync()
		start := time.Now()
		tar := exec.Command("sh", "-c", `tar -C "$1" -cf - . | tar -C "$2" -xf -`, "sh", src, tarDst)
		if out, err := tar.CombinedOutput(); err != nil {
			b.Fatalf("tar baseline: %v: %s", err, out)
		}
		tarTime += time.Since(start)
		// The unpacker syncs before it reports success; tar does not, so the fair comparison
		// on a disk is tar plus the same syncfs (`sync -f`).
		if out, err := exec.Command("sync", "-f", tarDst).CombinedOutput(); err != nil {
			b.Fatalf("sync -f: %v: %s", err, out)
		}
		tarSyncTime += time.Since(start)
		mustDo(b, os.RemoveAll(dst), os.RemoveAll(tarDst))

		if bare {
			mustDo(b, os.Mkdir(dst, 0o755))
			syscall.Sync()
			bareTime += bareWrite(b, dst, files, size)
			mustDo(b, os.RemoveAll(dst))
		}
		b.StartTimer()
	}
	b.StopTimer()
	mib := float64(files*size*b.N) / (1 << 20)
	b.ReportMetric(mib/qfileTime.Seconds(), "MiB/s")
	b.ReportMetric(float64(files*b.N)/qfileTime.Seconds(), "files/s")
	b.ReportMetric(float64(agentRSS), "agent-peak-KiB")
	b.ReportMetric(float64(unpackerRSS), "unpacker-peak-KiB")
	b.ReportMetric(mib/tarTime.Seconds(), "tar-MiB/s")
	b.ReportMetric(tarTime.Seconds()/qfileTime.Seconds(), "speed-vs-tar")
	b.ReportMetric(tarSyncTime.Seconds()/qfileTime.Seconds(), "speed-vs-tar+sync")
	if bare {
		b.ReportMetric(float64(files*b.N)/bareTime.Seconds(), "bare-files/s")
		b.ReportMetric(bareTime.Seconds()/qfileTime.Seconds(), "speed-vs-bare")
	}
}

// bareWrite creates files files of size bytes in dir the way the unpacker does (openat with
// O_EXCL, write, utimensat, close; then syncfs), from one buffer in memory, and returns how
// long it took: what the kernel allows, with no stream, CRC, sandbox or second process.
func bareWrite(b *testing.B, dir string, files, size int) time.Duration {
	payload := make([]byte, min(size, 1<<20))
	dirFD, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	mustDo(b, err)
	defer unix.Close(dirFD)
	times := [2]unix.Timespec{{Sec: 1}, {Sec: 2}}
	start := time.Now()
	for i := range files {
		fd, err := unix.Openat(dirFD, fmt.Sprintf("pkg-%05d.rpm", i), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		mustDo(b, err)
		for left := size; left > 0; {
			n, err := unix.Write(fd, payload[:min(left, len(payload))])
			mustDo(b, err)
			left -= n
		}
		mustDo(b, sandbox.Futimens(fd, times), unix.Close(fd))
	}
	mustDo(b, unix.Syncfs(dirFD))
	return time.Since(start)
}
