#!/usr/bin/env bash
# Installs the system packages the project needs (Debian), or, when not root,
# prints the exact command to run. Safe to run again: it installs only what is missing.
set -euo pipefail

# command name -> Debian package that provides it
declare -A need=(
	[rpm]=rpm             # dom0's database and queries (pkgtool), the UpdateVM's rpmdb import
	[rpmbuild]=rpm        # testrepo builds some test packages with the real rpmbuild
	[rpmkeys]=rpm         # dom0's cross-check of every package (verify.md)
	[rpmsign]=rpm         # testrepo signs packages as a distribution does
	[createrepo_c]=createrepo-c # dom0's cached repository
	[dnf]=dnf             # the UpdateVM's download, dom0's install
	[gpg]=gnupg           # testrepo's keys and signed metadata; rpmsign's signer
	[gpgconf]=gnupg       # stops the gpg-agent rpmsign starts
	[ip]=iproute2         # the lab's network namespaces and links
	[unshare]=util-linux  # the lab's domains and the packaging tests' roots
	[nsenter]=util-linux  # running commands in a lab domain
	[pgrep]=procps        # tests that find a process inside a lab domain
	[systemd-analyze]=systemd  # the packaging tests verify the units
	[systemd-tmpfiles]=systemd # the packages' install scripts; the packaging tests
	[systemd-sysusers]=systemd # the dom0 package's install script makes the unpacker's user with it
	[dpkg-deb]=dpkg       # the packaging tests unpack the DEB
	[strace]=strace       # the attack suite's evidence of the unpacker's system calls
	[chattr]=e2fsprogs    # fault tests: an immutable file makes a write fail as root
	[setpriv]=util-linux  # a receive test drops capabilities as the packaged unit does
	[/usr/bin/time]=time # GNU time: the benchmarks' peak RSS of each process ("time" alone is bash's keyword)
	[git]=git            # the commit time, pedos-receive-updates' time floor; the packaging tests' tree copy
	[/usr/sbin/update-ca-certificates]=ca-certificates # go reaching the module proxy over TLS (debootstrap has none)
	[/usr/sbin/visudo]=sudo # the packaging test checks the Qubes sudoers drop-in's syntax with it
	[/usr/sbin/logrotate]=logrotate # a test runs the dom0 package's rotation rule for the update log
	[/usr/sbin/modprobe]=kmod # the vsock tests load vsock_loopback (CID 1), a module in Debian's kernel
)

missing=()
for cmd in "${!need[@]}"; do
	if [[ $cmd == /* ]]; then
		[ -x "$cmd" ] || missing+=("${need[$cmd]}")
	elif ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/bin/$cmd" ]; then
		missing+=("${need[$cmd]}")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)

cmdline="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${pkgs[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "missing system packages: ${pkgs[*]}" >&2
	echo "run as root: $cmdline" >&2
	exit 1
fi
echo "installing system packages: ${pkgs[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
