#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time (default 4s).
# Seed corpora live in each package's testdata/fuzz/<Target>/.
set -euo pipefail
t=${1:-4s}
cd "$(dirname "$0")/.."
n=0
while IFS=: read -r file _ line; do
	pkg=./$(dirname "$file")
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
	echo "fuzz: $pkg $name ($t)"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$t" "$pkg"
	n=$((n + 1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' internal cmd 2>/dev/null | sort)
echo "fuzz: $n targets passed"
