#!/usr/bin/env bash
# The main job, end to end, in the lab (make demo): dom0 with no network
# updates through an UpdateVM; then a compromised UpdateVM tries to slip a
# tampered package in and dom0 refuses it, changing nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
lab=$bin/pedos-lab
[ "$(id -u)" -eq 0 ] || { echo "make demo needs root (namespaces, mounts)" >&2; exit 1; }
# The lab's files (about 60 MB) go when the demo succeeds in a directory of its own making;
# PEDOS_DEMO_DIR (kept) or PEDOS_DEMO_KEEP=1 keeps them to look at, a failure too.
dir=${PEDOS_DEMO_DIR:-}
made_dir=
[ -n "$dir" ] || { dir=$(mktemp -d /tmp/pedos-demo.XXXXXX) && made_dir=1; }

# Step titles in bold on a terminal only, so that a log of the demo holds no escapes.
bold= plain=
[ -t 1 ] && bold=$(printf '\033[1m') plain=$(printf '\033[0m')
step() { printf '\n%s### %s%s\n' "$bold" "$*" "$plain"; }
in_dom0() { "$lab" exec --dir "$dir" dom0 -- "$@"; }
in_vm() { "$lab" exec --dir "$dir" sys-firewall -- "$@"; }
cleanup() { "$lab" down --dir "$dir" >/dev/null 2>&1 || true; echo "the lab's files stay in $dir" >&2; }
trap cleanup EXIT

step "1. Start the lab in $dir: dom0 (no network), sys-firewall (the UpdateVM), a mirror"
"$lab" up --dir "$dir" --bin "$bin"
in_dom0 sh -c 'echo "dom0 network interfaces:"; ip -brief link; if (exec 3<>/dev/tcp/198.18.0.1/80) 2>/dev/null; then echo "dom0 reached the mirror?!"; exit 1; else echo "dom0 cannot reach the mirror: good"; fi'

step "2. dom0's packages before the update"
in_dom0 rpm -q hello libfoo libbar || true

step "3. The publisher releases updates: hello 1.1 (needs the new libbar and libfoo >= 2.0)"
"$lab" publish --dir "$dir" 'libbar-1.0-1' 'libfoo-2.0-1' 'hello-1.1-1 requires=libfoo>=2.0 requires=libbar'

step "4. pedos-dom0-update --check-only (exit 100: updates exist)"
set +e; in_dom0 pedos-dom0-update --check-only; code=$?; set -e
echo "exit status: $code"
[ "$code" -eq 100 ] || { echo "demo: --check-only exited $code, want 100 (updates exist)" >&2; exit 1; }

step "5. pedos-dom0-update -y in dom0"
in_dom0 pedos-dom0-update -y

step "6. dom0's packages after the update"
in_dom0 rpm -q hello libfoo libbar

step "7. An attacker owns the UpdateVM: its qfile-agent flips one byte of every package it sends"
in_vm sh -c 'cd /usr/lib/pedos/bin && mv qfile-agent qfile-agent.real && cat > qfile-agent <<"EOS"
#!/bin/sh
# compromised UpdateVM: tamper with each package just before it leaves
for f in "$@"; do
	case "$f" in *.rpm)
		size=$(stat -c %s "$f")
		printf "\377" | dd of="$f" bs=1 seek=$((size - 16)) conv=notrunc status=none ;;
	esac
done
exec /usr/lib/pedos/bin/qfile-agent.real "$@"
EOS
chmod 755 qfile-agent'
"$lab" publish --dir "$dir" 'hello-1.2-1 requires=libfoo>=2.0 requires=libbar'
before_repo=$(in_dom0 sh -c 'cd /var/lib/PedOS/updates && find . -type f | sort | xargs sha256sum' | sha256sum)
before_db=$(in_dom0 rpm -qa | sort | sha256sum)

step "8. pedos-dom0-update -y again: dom0 must refuse the tampered package"
set +e; in_dom0 pedos-dom0-update -y; code=$?; set -e
echo "exit status: $code"

step "9. Nothing changed in dom0"
after_repo=$(in_dom0 sh -c 'cd /var/lib/PedOS/updates && find . -type f | sort | xargs sha256sum' | sha256sum)
after_db=$(in_dom0 rpm -qa | sort | sha256sum)
in_dom0 rpm -q hello libfoo libbar
[ "$before_repo" = "$after_repo" ] && echo "cached repository: unchanged" || { echo "cached repository CHANGED"; exit 1; }
[ "$before_db" = "$after_db" ] && echo "installed packages: unchanged" || { echo "installed packages CHANGED"; exit 1; }
[ "$code" -eq 1 ] || { echo "expected exit 1 from the refused update"; exit 1; }
echo "last log record:"; in_dom0 sh -c 'tail -n 2 /var/log/pedos/updates.log | head -n 1 | cut -c1-400'

step "10. Stop the lab"
"$lab" down --dir "$dir"
trap - EXIT
if [ -n "$made_dir" ] && [ -z "${PEDOS_DEMO_KEEP:-}" ]; then
	# --one-file-system: never into a mount the lab might have left behind.
	rm -rf --one-file-system "$dir" && echo "removed the lab's files in $dir (PEDOS_DEMO_KEEP=1 keeps them)"
else
	echo "the lab's files stay in $dir"
fi
echo "demo finished: dom0 updated without a network, and refused a tampered delivery"
