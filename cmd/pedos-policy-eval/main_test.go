package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"pedos.dev/updates/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// TestMissingDomainsFile: with no domains configuration only dom0 is known,
// and the deny says that the file does not exist and how to name another,
// not only that the source is not in it. (internal/qrexec tests the
// policy decisions with a configuration.)
func TestMissingDomainsFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "domains.conf")
	stdout, stderr, code := testbin.Run(t, exec.Command(testbin.Path(t, "pedos-policy-eval"),
		"--policy-dir", t.TempDir(), "--domains", missing, "sys-firewall", "dom0", "PedOS.ReceiveUpdates"))
	want := "pedos-policy-eval: source sys-firewall is not a domain of " + missing +
		", which does not exist (only dom0 is known; --domains FILE reads another): the daemon serves no such domain\n"
	if code != 126 || stdout != "deny\n" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want 126, deny and %q", code, stdout, stderr, want)
	}
}

// TestSourceDom0: dom0's own calls never go through policy, so an answer
// for source dom0 comes with a note saying so (a "deny" would mislead).
func TestSourceDom0(t *testing.T) {
	policyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(policyDir, "30-test.policy"), []byte("s.A * @anyvm @anyvm allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := testbin.Run(t, exec.Command(testbin.Path(t, "pedos-policy-eval"),
		"--policy-dir", policyDir, "--domains", filepath.Join(t.TempDir(), "none"), "dom0", "dom0", "s.A"))
	note := "pedos-policy-eval: note: dom0's own calls (qrexec-client, pedos-run) are not subject to policy: this is only what the rules say\n"
	if code != 126 || stdout != "deny\n" || !strings.HasPrefix(stderr, note) {
		t.Errorf("exit %d, stdout %q, stderr %q; want 126, deny and first %q", code, stdout, stderr, note)
	}
}
