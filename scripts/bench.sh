#!/usr/bin/env bash
# Runs every benchmark of the module (make bench) and prints the results.
# Each benchmark measures its own baseline in the same run and reports the
# ratio (docs/performance.md records the figures). The end-to-end benchmarks
# move gigabytes per iteration, so one iteration each is the default.
#   BENCHTIME=3x scripts/bench.sh        more iterations
#   BENCH=Transfer scripts/bench.sh      only the benchmarks matching a pattern
#   TMPDIR=/dev/shm scripts/bench.sh     measure without the disk
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
# The binaries `make build` made, if any; otherwise the tests build their own.
if [ -z "${PEDOS_BIN:-}" ] && [ -d bin ]; then
	export PEDOS_BIN=$PWD/bin
fi
echo "bench: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, TMPDIR=${TMPDIR:-/tmp} ($(df --output=fstype "${TMPDIR:-/tmp}" | tail -1)), load $(cut -d' ' -f1-3 /proc/loadavg)"
go test -run '^$' -bench "${BENCH:-.}" -benchtime "${BENCHTIME:-1x}" -timeout 60m ./... |
	grep -Ev '^(\?|PASS$|goos:|goarch:|cpu:)'
