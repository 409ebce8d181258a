package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/dom0"
)

// receiveKillTrials is how often TestReceiveKilled kills the service;
// PEDOS_LONG=1 runs the long mode.
func receiveKillTrials() int {
	if os.Getenv("PEDOS_LONG") != "" {
		return 100
	}
	return 20
}

// F1: the receive service killed with SIGKILL at random points. The cached
// repository is always the old one or the new one, complete, and the next
// update works.
func TestReceiveKilled(t *testing.T) {
	l := newLab(t)
	// 8 MB of payload keeps the service alive for about 100 ms after it is
	// seen (its unpack, verification and publication), where the random
	// delays below land: with a few kilobytes and delays up to 200 ms, most
	// trials came after its end, and once under load none killed it.
	l.publish("hello-1.1-1 size=8000000")
	newSet := []string{"hello-1.1-1.noarch.rpm"}
	oldDigest := treeDigest(t, filepath.Join(l.Root("dom0"), dom0.CachedRepoDir), "")
	// Whether a delay lands inside the service is chance, the more so under
	// load: trials go on past the count until a quarter of it killed the
	// service, up to three times the count.
	trials, killed := receiveKillTrials(), 0
	trial := 0
	for ; trial < trials || killed < trials/4 && trial < 3*trials; trial++ {
		// Wait inside dom0 until the service runs, then kill it after a
		// random delay: during the unpack, the verification or the
		// publication.
		delay := fmt.Sprintf("0.%03d", rand.IntN(80))
		killer := make(chan string, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, _, _, _ := l.Exec(ctx, "dom0", nil, "sh", "-c",
				"for i in $(seq 1 1000); do pids=$(pgrep -f 'PedOS[.]ReceiveUpdates') && break; sleep 0.005; done; sleep "+delay+"; for p in $pids; do kill -KILL $p 2>/dev/null && k=1; done; [ -n \"$k\" ] && echo killed")
			killer <- string(out)
		}()
		rep, stderr := l.update("--downloadonly")
		if strings.Contains(<-killer, "killed") {
			killed++
		}
		repo := filepath.Join(l.Root("dom0"), dom0.CachedRepoDir)
		got := l.cachedPackages()
		switch {
		case treeDigest(t, repo, "") == oldDigest:
			// the old repository, untouched
		case slices.Equal(got, newSet):
			if _, err := os.Stat(filepath.Join(repo, "repodata", "repomd.xml")); err != nil {
				t.Fatalf("trial %d: new packages published without metadata: %v", trial, err)
			}
			oldDigest = treeDigest(t, repo, "")
		default:
			t.Fatalf("trial %d: the cached repository is neither the old nor the new one: %v (exit %d)\n%s", trial, got, rep.Exit, stderr)
		}
		if rep.Exit != 0 && !strings.Contains(stderr, "delivered nothing") && !strings.Contains(stderr, "failed") {
			t.Errorf("trial %d: exit %d without a clear reason:\n%s", trial, rep.Exit, stderr)
		}
	}
	t.Logf("%d of %d trials killed the service", killed, trial)
	if killed == 0 {
		t.Error("no trial killed the service: the test did not test anything")
	}
	rep, stderr := l.update("-y")
	if rep.Exit != 0 || !slices.Contains(l.installed(), "hello-1.1-1") {
		t.Fatalf("update after the kills: exit %d\n%s", rep.Exit, stderr)
	}
}
