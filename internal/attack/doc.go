// Package attack is the adversarial suite (issue 8): it runs every row of
// threats.md (S1–S13, P1–P11, M1–M9, C1–C7, F1–F5) and two load rows against
// the real binaries in a lab (internal/lab). Each row stages the attack with
// a real attacker — a replaced UpdateVM program that sends a hand-made qfile
// stream or crafted, old or extra packages; a rogue call to the service; a
// fault injected in dom0 — runs pedos-dom0-update, and checks the outcome
// (refused with the expected reason, or recovered), dom0's invariants
// (installed packages, rpm database, cached repository, freshness state, no
// file created outside the staging directory, no process left) and that no
// untrusted text was echoed. `pedos-lab attack` prints the report;
// docs/attacks.md explains it.
package attack
