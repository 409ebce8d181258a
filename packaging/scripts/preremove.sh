#!/bin/sh
# Before removal (rpm: $1 = 0; dpkg: $1 = remove): stop and disable the qrexec unit.
# On an upgrade (rpm: $1 = 1; dpkg: upgrade) the unit keeps running.
set -u
unit=@UNIT@
case "${1:-}" in
0 | remove)
	# A PedOS/Qubes install leaves the unit out (docs/deploy-qubes.md): nothing to stop.
	if [ -d /run/systemd/system ] && [ -e "/usr/lib/systemd/system/$unit" ]; then
		systemctl disable --now "$unit" || :
	fi
	;;
esac
exit 0
