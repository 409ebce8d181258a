#!/usr/bin/env bash
# make bench: every benchmark of the project, then one table, with
# bench/results.json and bench/results.png (docs/performance.md explains
# them). Needs root: the unpacker switches to an unprivileged user and the
# lab uses namespaces. Takes about 10 minutes on 2 cores and a few GiB of
# scratch space in TMPDIR, removed afterwards.
#   BENCH_QUICK=1 scripts/bench.sh      a subset in about a minute, to check that it works,
#                                       into bench/quick/ (ignored by git): never over
#                                       the full run's bench/results.*
#   BENCH=Transfer scripts/bench.sh     only the micro-benchmarks matching a pattern
#   BENCH_ONLY=receive scripts/bench.sh only these end-to-end parts (receive,memory,update)
#   BENCH_OUT=/tmp/b scripts/bench.sh   write the results elsewhere (default bench/,
#                                       or bench/quick/ with BENCH_QUICK)
#   TMPDIR=/dev/shm scripts/bench.sh    measure without the disk
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (the unpacker switches to an unprivileged user; the lab needs namespaces)" >&2
	exit 1
fi
out=${BENCH_OUT:-bench}
if [ -n "${BENCH_QUICK:-}" ]; then
	out=${BENCH_OUT:-bench/quick}
fi
mkdir -p "$out"
make --no-print-directory build >/dev/null
export PEDOS_BIN=$PWD/bin
micro=$(mktemp "${TMPDIR:-/tmp}/pedos-bench-micro.XXXXXX")
trap 'rm -f "$micro"' EXIT

echo "bench: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, TMPDIR=${TMPDIR:-/tmp} ($(df --output=fstype "${TMPDIR:-/tmp}" | tail -1)), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# The micro-benchmarks each move up to a GiB and measure their own baseline
# in the same run: one iteration each. Empty qrexec calls are timed over
# many iterations instead, or calls/s would be one call's latency.
run_micro() {
	if ! go test -run '^$' -timeout 60m "$@" >>"$micro" 2>&1; then
		grep -Ev '^(ok|PASS$|goos:|goarch:|cpu:)' "$micro" >&2
		echo "bench: micro-benchmarks failed" >&2
		exit 1
	fi
}
quick=()
if [ -n "${BENCH_QUICK:-}" ]; then
	quick=(--quick)
	echo "bench: quick subset: empty qrexec calls only, then small end-to-end runs" >&2
	run_micro -bench EmptyCalls -benchtime 100x ./internal/qrexec/
else
	echo "bench: micro-benchmarks (go test -bench, about 3 minutes)" >&2
	run_micro -bench "${BENCH:-.}" -skip EmptyCalls -benchtime 1x ./...
	run_micro -bench EmptyCalls -benchtime 500x ./internal/qrexec/
fi
echo "bench: end-to-end benchmarks (bin/pedos-bench)" >&2
bin/pedos-bench "${quick[@]}" --only "${BENCH_ONLY:-receive,memory,update}" --micro "$micro" --out "$out" \
	--commit "$(git describe --always --dirty 2>/dev/null || echo unknown)"
