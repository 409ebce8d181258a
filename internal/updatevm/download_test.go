package updatevm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/updatecall"
)

// recordingDNF answers check-update 100 (updates) and records every dnf
// command line.
type recordingDNF struct{ calls [][]string }

func (*recordingDNF) ImportRPMDB(string, string) error { return nil }

func (r *recordingDNF) DNF(_ context.Context, args []string, _ io.Reader, _, _ io.Writer) (int, error) {
	r.calls = append(r.calls, args)
	if slices.Contains(args, "check-update") {
		return 100, nil
	}
	return 0, nil
}

// checkUpdateDNF answers check-update 100 with a listing as dnf 4.14
// prints it: download progress, an update with an epoch, a name too long
// for its column, and a package that replaces an installed one.
type checkUpdateDNF struct{ recordingDNF }

func (c *checkUpdateDNF) DNF(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	fmt.Fprint(stdout, "pedos-lab                                       757 kB/s | 1.0 kB     00:00    \n\n"+
		"hello.noarch                                 2:1.2-1        pedos-lab\n"+
		"a-name-too-long-for-its-column-x86_64-really.x86_64\n"+
		"                                             3.0-1.fc41     vendor   \n"+
		"Obsoleting Packages\n"+
		"hello-ng.noarch                              2.0-1          pedos-lab\n"+
		"    hello.noarch                             1.1-1          @System\n"+
		"hello.noarch                                 2:1.2-1        pedos-lab\n")
	return c.recordingDNF.DNF(ctx, args, stdin, io.Discard, stderr)
}

// The list of updates for scripts is dnf check-update's own listing, read
// (one run: the same choice dnf made, priorities and replacements
// included), and check-update gets every option of the user's.
func TestCheckUpdatesList(t *testing.T) {
	dnf := &checkUpdateDNF{}
	var log, stdout strings.Builder
	u := &UpdateVM{InstallRoot: t.TempDir(), Tools: dnf, Log: &log}
	writeBelow(t, u.InstallRoot, updatecall.SyncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/current/\n")
	opts := []string{"--enablerepo=testing", "--exclude=kernel*", "--obsoletes", "-v"}
	if err := u.CheckUpdates(t.Context(), Request{DNFOptions: opts}, &stdout); !errors.Is(err, ErrUpdatesAvailable) {
		t.Fatalf("CheckUpdates: %v", err)
	}
	if len(dnf.calls) != 1 || !slices.Contains(dnf.calls[0], "check-update") || !slices.Contains(dnf.calls[0], "--obsoletes") {
		t.Fatalf("dnf calls %q, want one check-update with every option", dnf.calls)
	}
	want := "hello\t2\t1.2\t1\tnoarch\tpedos-lab\n" +
		"a-name-too-long-for-its-column-x86_64-really\t0\t3.0\t1.fc41\tx86_64\tvendor\n" +
		"hello-ng\t0\t2.0\t1\tnoarch\tpedos-lab\n"
	if stdout.String() != want {
		t.Errorf("listed:\n%s\nwant:\n%s", stdout.String(), want)
	}
	if !strings.Contains(log.String(), "Obsoleting Packages") {
		t.Errorf("dnf's listing is not on the log:\n%s", log.String())
	}
}

// growingDNF stands in for dnf downloading two packages of 1 MiB into
// --downloaddir, after saying the transaction's size.
type growingDNF struct{ recordingDNF }

func (g *growingDNF) DNF(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) (int, error) {
	dir := ""
	for _, a := range args {
		if d, ok := strings.CutPrefix(a, "--downloaddir="); ok {
			dir = d
		}
	}
	fmt.Fprint(stdout, "Total download size: 2.0 M\nDownloading Packages:\n")
	for _, name := range []string{"a-1-1.noarch.rpm", "b-1-1.noarch.rpm"} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, 1<<20), 0o644); err != nil {
			return 1, err
		}
		time.Sleep(10 * downloadProgressEvery)
	}
	return 0, nil
}

// A download tells its progress while dnf is silent, against the size
// dnf gave, and stops telling when dnf is done.
func TestDownloadProgress(t *testing.T) {
	defer func(every time.Duration) { downloadProgressEvery = every }(downloadProgressEvery)
	downloadProgressEvery = 20 * time.Millisecond
	var log lockedWriter
	var out strings.Builder
	log.w = &out
	u := &UpdateVM{InstallRoot: t.TempDir(), Tools: &growingDNF{}, Log: &log}
	writeBelow(t, u.InstallRoot, updatecall.SyncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/current/\n")
	files, err := u.Download(t.Context(), Request{Action: "upgrade"})
	if err != nil || len(files) != 2 {
		t.Fatalf("Download: %q, %v", files, err)
	}
	log.mu.Lock()
	got := out.String()
	log.mu.Unlock()
	for _, want := range []string{"Total download size: 2.0 M\n", "Downloading: 1.0 MiB of 2.0 MiB received (50 %)\n", "Downloading: 2.0 MiB of 2.0 MiB received (100 %)\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the log lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "(50 %)") != 1 {
		t.Errorf("an unchanged size was told again:\n%s", got)
	}
	time.Sleep(5 * downloadProgressEvery)
	log.mu.Lock()
	defer log.mu.Unlock()
	if out.String() != got {
		t.Errorf("told after the download ended:\n%s", out.String())
	}
}

func TestDNFSize(t *testing.T) {
	for in, want := range map[string]int64{"1.7 k": 1740, "99 M": 99 << 20, "2.0 G": 2 << 30, "512": 512, " 3 M ": 3 << 20, "x M": 0, "3 Q": 0, "-1 M": 0} {
		if got := dnfSize(in); got != want {
			t.Errorf("dnfSize(%q) = %d, want %d", in, got, want)
		}
	}
}

// silentDNF says nothing for a while; with metadata, it writes repodata into
// its cache meanwhile, as dnf does before it says a word.
type silentDNF struct {
	recordingDNF
	metadata bool
}

func (s *silentDNF) DNF(_ context.Context, args []string, _ io.Reader, _, _ io.Writer) (int, error) {
	cache := ""
	for _, a := range args {
		if d, ok := strings.CutPrefix(a, "--setopt=cachedir="); ok {
			cache = filepath.Join(d, "repo-0123", "repodata")
		}
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return 1, err
	}
	f, err := os.Create(filepath.Join(cache, "primary.xml.zst"))
	if err != nil {
		return 1, err
	}
	defer f.Close()
	for range 40 {
		time.Sleep(downloadProgressEvery / 2)
		if s.metadata {
			f.Write(make([]byte, 4096))
		}
	}
	return 0, nil
}

// A download that receives nothing, while dnf says nothing, is said to be
// waiting (a stopped mirror kept dom0's person without a word for minutes),
// again while it lasts; not before downloadQuietAfter, and not while
// repodata arrives in dnf's cache.
func TestDownloadSaysWhenNothingArrives(t *testing.T) {
	defer func(every, quiet time.Duration) { downloadProgressEvery, downloadQuietAfter = every, quiet }(downloadProgressEvery, downloadQuietAfter)
	downloadProgressEvery, downloadQuietAfter = 20*time.Millisecond, 160*time.Millisecond
	for _, metadata := range []bool{false, true} {
		var log lockedWriter
		var out strings.Builder
		log.w = &out
		u := &UpdateVM{InstallRoot: t.TempDir(), Tools: &silentDNF{metadata: metadata}, Log: &log}
		writeBelow(t, u.InstallRoot, updatecall.SyncReposDir+"/pedos.repo", "[current]\nbaseurl=http://mirror/current/\n")
		if _, err := u.Download(t.Context(), Request{Action: "upgrade"}); err != nil {
			t.Fatal(err)
		}
		log.mu.Lock()
		// 400 ms of silence: told at 160 and 320 ms or so, never more than twice.
		n := strings.Count(out.String(), "Waiting: nothing received for ")
		if !metadata && (n < 1 || n > 2) || metadata && n != 0 {
			t.Errorf("repodata arriving %v: told %d times that nothing arrives:\n%s", metadata, n, out.String())
		}
		log.mu.Unlock()
	}
}
