// Package benchrun is the end-to-end benchmark harness behind
// cmd/pedos-bench (issue 9, docs/performance.md): it generates batches of
// signed packages (internal/testrepo, deterministic by seed), streams them
// with the real qfile-agent into the real pedos-receive-updates and into a
// baseline pipeline of standard tools, runs pedos-dom0-update in the lab,
// and writes the results as JSON, a table and a PNG plot.
//
// Peak RSS is taken from GNU time (/usr/bin/time -f %M), a small launcher:
// a child started directly by this large process would inherit its
// high-water mark (os/exec starts children with vfork, and the kernel
// carries the old memory's peak across execve into ru_maxrss).
//
// It is benchmark code: never linked into a dom0 program.
package benchrun
