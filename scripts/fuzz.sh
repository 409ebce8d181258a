#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time (default 4s).
# Seed corpora live in each package's testdata/fuzz/<Target>/. With
# KEEP_CORPUS=1 (make fuzz), the interesting inputs the fuzzer found in this
# run (go keeps them in its cache, beside those of every earlier run) are
# copied into those seed corpora, to commit: at most KEEP_MAX (default 20)
# per target, so that a seed corpus stays something a person can review.
set -euo pipefail
t=${1:-4s}
cd "$(dirname "$0")/.."
cache=$(go env GOCACHE)/fuzz
mod=$(go list -m)
n=0
while IFS=: read -r file _ line; do
	dir=$(dirname "$file")
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
	echo "fuzz: ./$dir $name ($t)"
	# go's fuzzer can end a run with "context deadline exceeded" when a worker
	# is busy at the moment fuzztime runs out, with no failing input (go.dev/issue/75804,
	# fixed in Go 1.27); that one
	# is retried. A real failure writes its input to testdata and fails.
	marker=$(mktemp)
	for try in 1 2 3; do
		# -fuzzminimizetime: go minimizes each new input for up to 60 s, in time that
		# grows with the square of its length; with packages of a few KB as seeds, a
		# short run would spend all of its time minimizing and hardly fuzz at all.
		if out=$(go test -run='^$' -fuzz="^${name}\$" -fuzztime="$t" -fuzzminimizetime=1s "./$dir" 2>&1); then
			echo "$out" | tail -n 2
			break
		fi
		if ! grep -q 'context deadline exceeded' <<<"$out" || grep -q 'Failing input written' <<<"$out" || [ "$try" = 3 ]; then
			echo "$out"
			rm -f "$marker"
			exit 1
		fi
		# Not a failure of ours: go's FAIL block would only alarm.
		echo "fuzz: $name: go's fuzzer ended on its own deadline race (go.dev/issue/75804), no failing input; running it again"
	done
	if [ -n "${KEEP_CORPUS:-}" ] && [ -d "$cache/$mod/$dir/$name" ]; then
		mkdir -p "$dir/testdata/fuzz/$name"
		found=0 kept=0
		while IFS= read -r f; do
			[ -e "$dir/testdata/fuzz/$name/$(basename "$f")" ] && continue
			found=$((found + 1))
			if [ "$kept" -lt "${KEEP_MAX:-20}" ]; then
				cp "$f" "$dir/testdata/fuzz/$name/"
				kept=$((kept + 1))
			fi
		done < <(find "$cache/$mod/$dir/$name" -type f -newer "$marker" | sort)
		echo "fuzz: $name found $found new input(s) in this run; kept $kept in $dir/testdata/fuzz/$name"
	fi
	rm -f "$marker"
	n=$((n + 1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' internal cmd 2>/dev/null | sort)
echo "fuzz: $n targets passed"
