#!/bin/sh
# After install or upgrade of a pedos-updates package (rpm: $1 = 1 install, 2 upgrade;
# dpkg: $1 = configure). scripts/packages.sh fills in the unit and tmpfiles names for each
# package. Nothing here enables a unit: the administrator does, after writing
# the configuration (docs/deploy-kvm-vsock.md). Nothing here prints but a command that
# fails and the warning below, and nothing reads what an update delivered.
set -u
unit=@UNIT@
tmpfiles=@TMPFILES@

# The file's name, not its path: an administrator's /etc/tmpfiles.d/$tmpfiles then
# overrides ours here as it does at boot (tmpfiles.d(5)).
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create "$tmpfiles" || :
fi
# dom0 only: an empty but valid cached repository, so that a dnf reading
# /etc/yum.real.repos.d (PedOS-cached.repo, skip_if_unavailable=False) works before
# the first update. systemd-tmpfiles does not run where /proc is not mounted (an
# image built with rpm --root or dnf --installroot), so the directory is made here too.
if [ -f /etc/yum.real.repos.d/PedOS-cached.repo ] && [ ! -d /var/lib/PedOS/updates/repodata ] &&
	command -v createrepo_c >/dev/null 2>&1; then
	mkdir -p -m 0755 /var/lib/PedOS/updates &&
		createrepo_c --quiet --no-database /var/lib/PedOS/updates || :
fi
# dom0 only: the unpacker's own user (updates.conf's unpacker_user), from the
# package's sysusers.d file; useradd where systemd-sysusers is missing. Their
# output ("Creating user …") is shown only if they fail.
sysusers=/usr/lib/sysusers.d/pedos-updates-dom0.conf
if [ -f "$sysusers" ]; then
	if command -v systemd-sysusers >/dev/null 2>&1; then
		out=$(systemd-sysusers "${sysusers##*/}" 2>&1) || printf '%s\n' "$out" >&2
	elif ! grep -q '^pedos-unpack:' /etc/passwd && command -v useradd >/dev/null 2>&1; then
		# A group of that name may be left from an earlier user: useradd
		# --user-group would refuse it; systemd-sysusers reuses it too.
		{ grep -q '^pedos-unpack:' /etc/group || groupadd --system pedos-unpack; } &&
			useradd --system --gid pedos-unpack --no-create-home --home-dir / \
				--shell /usr/sbin/nologin --comment 'PedOS updates sandboxed unpacker' pedos-unpack || :
	fi
	# Neither tool changes a pedos-unpack that was there: one made as a
	# person's account may own files and run processes a compromised
	# unpacker could reach, so say so.
	while IFS=: read -r name _ uid _ _ _ shell; do
		if [ "$name" = pedos-unpack ] && { [ "$uid" -ge 1000 ] 2>/dev/null || { [ "${shell##*/}" != nologin ] && [ "${shell##*/}" != false ]; }; }; then
			echo "warning: pedos-unpack (uid $uid, shell $shell), the unpacker's user, is not a system user without a login: make it one, or name another in /etc/pedos/updates.conf (unpacker_user)" >&2
		fi
	done </etc/passwd
fi
if [ -d /run/systemd/system ] && [ -e "/usr/lib/systemd/system/$unit" ]; then
	systemctl daemon-reload || :
	case "${1:-}" in
	2 | configure)
		# Run through the unit itself (dom0 upgrading the UpdateVM's package
		# through its agent): stopping the unit would kill its whole control
		# group, this transaction's dnf or dpkg included. Left to restart later.
		ours=
		while IFS= read -r line; do
			case "$line" in */"$unit") ours=1 ;; esac
		done 2>/dev/null </proc/self/cgroup
		if [ -n "$ours" ]; then
			echo "note: $unit runs this upgrade, so it was not restarted: restart it afterwards (systemctl restart $unit)" >&2
		else
			systemctl try-restart "$unit" || :
		fi
		;;
	esac
fi
exit 0
