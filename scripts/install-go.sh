#!/usr/bin/env bash
# Installs the Go toolchain go.mod asks for in /usr/local/go, where the Makefile looks first,
# when this machine has no usable Go: none on the PATH or in /usr/local/go, or only one older
# than 1.21 (Debian 12's golang is 1.19), which cannot fetch the toolchain go.mod names by
# itself. The toolchain comes from the Go module proxy, where `go` itself fetches toolchains
# (golang.org/toolchain), and must match the SHA-256 pinned below. Not root: prints the command.
set -euo pipefail

version=1.26.8
# sha256sum of https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$version.linux-$arch.zip
declare -A zip_sha256=(
	[amd64]=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7
	[arm64]=02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99
)

# usable GO: GO runs and is at least 1.21, which fetches go.mod's toolchain itself, or 1.26
# when GOTOOLCHAIN=local forbids that. Asked outside the module, with GOTOOLCHAIN=local, so
# that asking fetches nothing.
need_minor=21
[ "${GOTOOLCHAIN:-}" != local ] || need_minor=26
usable() {
	local v
	v=$(cd / && GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	local major=${v%%.*} rest=${v#*.}
	local minor=${rest%%[.a-z]*}
	[[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] && { ((major > 1)) || ((minor >= need_minor)); }
}

for go in /usr/local/go/bin/go "$(command -v go || true)"; do
	[ -n "$go" ] && [ -x "$go" ] && usable "$go" && exit 0
done

if [ -e /usr/local/go ]; then
	echo "install-go: /usr/local/go holds a Go older than 1.21 (or a broken one): move it away, then run make again" >&2
	exit 1
fi
case "$(uname -m)" in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
*)
	echo "install-go: no Go 1.21 or newer, and no pinned toolchain for $(uname -m): install Go $version from https://go.dev/dl/ into /usr/local/go" >&2
	exit 1
	;;
esac
if [ "$(id -u)" -ne 0 ]; then
	echo "install-go: no Go 1.21 or newer on this machine: run 'make deps' as root (it installs Go $version in /usr/local/go), or install Go yourself" >&2
	exit 1
fi
for tool in curl unzip; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "install-go: installing curl and unzip to fetch it" >&2
		if ! out=$(apt-get update -qq 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl unzip ca-certificates 2>&1); then
			echo "$out" >&2
			exit 1
		fi
		break
	fi
done
# The first proxy of GOPROXY (go's default when unset), as go reads the list; "direct" (a
# version control system) does not serve toolchains, and "off" forbids fetching.
proxy=
IFS=',|' read -ra proxies <<<"${GOPROXY:-https://proxy.golang.org}"
for p in "${proxies[@]}"; do
	case "$p" in
	off)
		echo "install-go: no Go 1.21 or newer on this machine, and GOPROXY=off forbids fetching one: install Go $version in /usr/local/go" >&2
		exit 1
		;;
	direct | "") ;;
	*)
		proxy=${p%/}
		break
		;;
	esac
done
proxy=${proxy:-https://proxy.golang.org}
url="$proxy/golang.org/toolchain/@v/v0.0.1-go$version.linux-$arch.zip"
shown_url=$(sed -E 's#//[^/@]*@#//#' <<<"$url") # without credentials
tmp=$(mktemp -d)
# Unpacked on /usr/local's own file system, so that the last step is a rename: /usr/local/go
# appears whole or not at all.
unpacked=$(mktemp -d /usr/local/.go-install.XXXXXX)
trap 'rm -rf "$tmp" "$unpacked"' EXIT
echo "install-go: no Go 1.21 or newer on this machine: installing Go $version in /usr/local/go from $shown_url" >&2
if ! curl -fsSL --retry 3 -o "$tmp/go.zip" "$url"; then
	echo "install-go: could not download $shown_url (curl's error above): check this machine's network, proxy and CA certificates (behind a proxy that intercepts TLS, \"SSL certificate problem\" above: put its CA certificate in /usr/local/share/ca-certificates/NAME.crt and run update-ca-certificates, as README.md's top says), or install Go $version from https://go.dev/dl/ into /usr/local/go yourself; the build fetches modules from the same proxy" >&2
	exit 1
fi
if ! echo "${zip_sha256[$arch]}  $tmp/go.zip" | sha256sum --check --quiet - >/dev/null 2>&1; then
	echo "install-go: $shown_url does not have the pinned SHA-256 ${zip_sha256[$arch]}: not installed" >&2
	exit 1
fi
unzip -q "$tmp/go.zip" -d "$unpacked"
# -T: never into a /usr/local/go made meanwhile (a second run), which makes this fail instead.
mv -T "$unpacked/golang.org/toolchain@v0.0.1-go$version.linux-$arch" /usr/local/go
/usr/local/go/bin/go version >&2
