#!/bin/sh
# After removal: forget the unit. State, logs and the cached repository stay (an
# administrator removes /var/lib/PedOS and /var/log/pedos by hand, docs/operations.md).
set -u
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || :
fi
exit 0
