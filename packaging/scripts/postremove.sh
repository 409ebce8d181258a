#!/bin/sh
# After removal (rpm: $1 = 0, or 1 after an upgrade; dpkg: $1 = remove, purge, upgrade):
# forget the unit. State, logs and the cached repository stay (an administrator removes
# /var/lib/PedOS and /var/log/pedos by hand, docs/operations.md "Upgrading and removing").
set -u
# dpkg -P (only the UpdateVM's DEB is purged): the fake installroot holds the UpdateVM's
# copy of dom0's rpm database, dnf's cache and the downloads, for this package alone,
# so it goes with the configuration. Whatever else is in /var/lib/PedOS stays.
if [ "${1:-}" = purge ]; then
	rm -rf /var/lib/PedOS/dom0-updates
	rmdir /var/lib/PedOS 2>/dev/null || :
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || :
fi
exit 0
