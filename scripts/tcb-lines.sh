#!/usr/bin/env bash
# Measures dom0's trusted computing base: our Go reachable from the two
# programs that see untrusted bytes, and the third-party modules they link.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
cmds=(./cmd/pedos-receive-updates ./cmd/qfile-dom0-unpacker)
mod=$(go list -m)
total=0
printf '%-40s %6s\n' package lines
for pkg in $(go list -deps "${cmds[@]}" | grep "^$mod/" | sort); do
	files=$(go list -f '{{range .GoFiles}}{{$.Dir}}/{{.}} {{end}}' "$pkg")
	# lines of code: not blank, not a // comment
	n=$(cat $files | grep -v -E '^\s*(//.*)?$' | wc -l)
	printf '%-40s %6d\n' "${pkg#$mod/}" "$n"
	total=$((total + n))
done
printf '%-40s %6d\n' total "$total"
echo
echo "third-party modules linked:"
go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}}{{end}}{{end}}' "${cmds[@]}" | sort -u | sed 's/^/  /'
