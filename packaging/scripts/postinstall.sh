#!/bin/sh
# After install or upgrade of a pedos-updates package (rpm: $1 = 1 install, 2 upgrade;
# dpkg: $1 = configure). scripts/packages.sh fills in the unit and tmpfiles names for each
# package. Nothing here enables a unit: the administrator does, after writing
# the configuration (docs/deploy-kvm-vsock.md).
set -u
unit=@UNIT@
tmpfiles=@TMPFILES@

if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create "/usr/lib/tmpfiles.d/$tmpfiles" || :
fi
# dom0 only: an empty but valid cached repository, so that a dnf reading
# /etc/yum.real.repos.d (PedOS-cached.repo, skip_if_unavailable=False) works before
# the first update.
if [ -f /etc/yum.real.repos.d/PedOS-cached.repo ] && [ ! -d /var/lib/PedOS/updates/repodata ] &&
	command -v createrepo_c >/dev/null 2>&1; then
	createrepo_c --quiet --no-database /var/lib/PedOS/updates || :
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || :
	case "${1:-}" in
	2 | configure) systemctl try-restart "$unit" || : ;;
	esac
fi
exit 0
