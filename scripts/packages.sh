#!/usr/bin/env bash
# Builds the installable packages (docs/operations.md "Packages"):
#   pedos-updates-dom0  RPM        dom0's programs, configuration, qrexec daemon unit
#   pedos-updates-vm    RPM, DEB   the UpdateVM's programs, qrexec agent unit
# into dist/out/ (or $PEDOS_PACKAGES_OUT), with nfpm and go-md2man from the Go module
# proxy (go.mod is not touched). Works from a clean clone; needs go and gzip.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# nfpm v2.46 and later need modules the proxy does not serve here (go.digitalxero.dev).
NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
MD2MAN=github.com/cpuguy83/go-md2man/v2@v2.0.7

out=${PEDOS_PACKAGES_OUT:-$repo/dist/out}
stage=$(mktemp -d "${TMPDIR:-/tmp}/pedos-packages.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out" "$stage"/{bin,man,tools,scripts,repo}
# The configurations read dist/, docs/ and packaging/ as repo/: a copy taken once, so
# that all three packages get the same files and a file edited during the build cannot
# break it (nfpm fails with "write too long" when a file grows while it copies it).
mkdir "$stage/repo/dist"
cp -R dist/dom0 dist/vm dist/qubes "$stage/repo/dist/"
cp -R docs packaging "$stage/repo/"

export CGO_ENABLED=0
# The same build as `make build`: the commit time is pedos-receive-updates' own time
# floor (verify.md §2 step 4).
build_time=$(git log -1 --format=%cI 2>/dev/null || true)
# Each package's programs are the bin/ entries of its config.
programs() { sed -n 's|^  - src: bin/||p' "$stage/repo/packaging/nfpm/pedos-updates-$1.yaml"; }
mapfile -t commands < <(programs dom0; programs vm)
version_pkg=pedos.dev/updates/internal/release # what --version prints
go build -trimpath -ldflags "-X main.buildTime=$build_time -X $version_pkg.name=$(cat packaging/VERSION)
	-X $version_pkg.commit=$(git describe --always --dirty --abbrev=12 2>/dev/null || true)
	-X $version_pkg.commitTime=$build_time" -o "$stage/bin/" \
	"${commands[@]/#/./cmd/}"
# Licences: the programs are static Go binaries holding the Go standard library and
# third-party packages, whose licences ask that their notices go with the binaries. Each
# package gets the licence files of what its own programs link: every file whose name
# starts with LICENSE, LICENCE, COPYING, COPYRIGHT, NOTICE or PATENTS (in any case) in a
# linked package's directory or above it up to its module's root (klauspost/compress keeps
# some in subdirectories). The RPMs install them in
# /usr/share/licenses/PKG/, named after where they were found ("_" for "/"); the DEB
# has them all in its copyright file. A linked module without a licence stops the build.
licences() { # SIDE PROGRAM...
	local side=$1 dir=$stage/licences/$1 goroot mod version root pkgdir d f rel dest
	local -A licensed=()
	shift
	mkdir -p "$dir"
	goroot=$(go env GOROOT)
	install -m 0644 "$goroot/LICENSE" "$dir/go.LICENSE"
	install -m 0644 "$goroot/PATENTS" "$dir/go.PATENTS"
	echo "go $(go env GOVERSION)" >"$stage/licences/$side.list"
	# One line per linked third-party package: module, version, module root, package
	# directory, separated by US (0x1f: a path may hold a space or a tab, and IFS would
	# merge empty whitespace fields). No root: vendor mode, unsupported.
	local us=$'\x1f'
	go list -deps -f "{{with .Module}}{{if not .Main}}{{.Path}}$us{{.Version}}$us{{.Dir}}$us{{\$.Dir}}{{end}}{{end}}" \
		"${@/#/./cmd/}" | sort -u >"$stage/licences/$side.packages"
	cut -d "$us" -f1,2 --output-delimiter=' ' "$stage/licences/$side.packages" | sort -u >>"$stage/licences/$side.list"
	shopt -s nocaseglob
	while IFS=$us read -r mod version root pkgdir; do
		if [ -z "$mod" ] || [ -z "$root" ] || [[ $pkgdir != "$root" && $pkgdir != "$root"/* ]]; then
			echo "packages.sh: cannot tell where module $mod's files are (root '$root', package '$pkgdir'; vendor mode is not supported)" >&2
			exit 1
		fi
		d=$pkgdir
		while :; do
			for f in "$d"/LICENSE* "$d"/LICENCE* "$d"/COPYING* "$d"/COPYRIGHT* "$d"/NOTICE* "$d"/PATENTS*; do
				[ -f "$f" ] || continue
				rel=${f#"$root"/}
				dest=$dir/${mod//\//_}.${rel//\//_}
				# The same module's licence comes once per linked package; two different
				# files must not meet under one name.
				if [ -e "$dest" ] && ! cmp -s "$f" "$dest"; then
					echo "packages.sh: two licence files are both $dest" >&2
					exit 1
				fi
				install -m 0644 "$f" "$dest"
				licensed[$mod]=1
			done
			[ "$d" = "$root" ] && break
			d=$(dirname "$d")
		done
	done <"$stage/licences/$side.packages"
	shopt -u nocaseglob
	while read -r mod version; do
		if [ "$mod" != go ] && [ -z "${licensed[$mod]:-}" ]; then
			echo "packages.sh: module $mod $version has no licence file" >&2
			exit 1
		fi
	done <"$stage/licences/$side.list"
}
for side in dom0 vm; do
	mapfile -t side_commands < <(programs "$side")
	licences "$side" "${side_commands[@]}"
done
# The DEB's copyright file (Debian policy 12.5): ours, then every licence in full.
{
	echo "pedos-updates-vm: the UpdateVM's side of PedOS secure updates, https://pedos.dev/updates"
	echo "Copyright: the PedOS project. Licence: proprietary."
	echo
	echo "The programs are statically linked Go programs. They contain the Go standard"
	echo "library and these Go modules, whose copyright notices and licences follow in full:"
	echo
	sed 's/^/  /' "$stage/licences/vm.list"
	for f in "$stage/licences/vm"/*; do
		printf '\n%s\n%s\n\n' "-----------------------------------------------------------------------------" "$(basename "$f")"
		cat "$f"
	done
} >"$stage/licences/vm.copyright"

GOBIN=$stage/tools go install "$NFPM"
GOBIN=$stage/tools go install "$MD2MAN"

# Man pages: docs/man/NAME.SECTION.md -> NAME.SECTION.gz (gzip -n: no name or time
# inside, so the same source gives the same bytes).
for page in docs/man/*.md; do
	name=$(basename "$page" .md)
	"$stage/tools/go-md2man" -in "$page" -out "$stage/man/$name"
	gzip -n -9 "$stage/man/$name"
done

for pkg in dom0:pedos-qrexec-daemon.service:pedos-updates-dom0.conf \
	vm:pedos-qrexec-agent.service:pedos-updates-vm.conf; do
	IFS=: read -r side unit tmpfiles <<<"$pkg"
	mkdir -p "$stage/scripts/$side"
	for script in postinstall preremove postremove; do
		sed -e "s/@UNIT@/$unit/" -e "s/@TMPFILES@/$tmpfiles/" \
			"packaging/scripts/$script.sh" >"$stage/scripts/$side/$script.sh"
	done
done

# Version: packaging/VERSION; release: the commit's time and hash, so that a later
# commit sorts later.
export PEDOS_VERSION PEDOS_RELEASE PEDOS_ARCH
PEDOS_VERSION=$(cat packaging/VERSION)
PEDOS_RELEASE=$(TZ=UTC git log -1 --format=%cd.g%h --date=format-local:%Y%m%d%H%M%S 2>/dev/null || echo 1)
# Uncommitted changes, and files git does not know (a new source file is built in), make
# another package than the commit's: it sorts after the commit's (and after an earlier build
# of changes, by this build's time) and before the next commit's.
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
	PEDOS_RELEASE+=.dirty$(TZ=UTC date +%Y%m%d%H%M%S)
fi
PEDOS_ARCH=$(go env GOARCH)
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

# The RPMs' copies of the configs differ in two ways:
# - rpm shows rpm.summary above the description: the copy leaves out the description's
#   first line (the DEB's short description, the same line), so that it is not said twice;
# - the man pages and docs/ are %doc and the licences %license (rpm -qd, rpm -qL, and
#   --excludedocs keeps the licences), nfpm types that take no glob and that the DEB drops:
#   each glob entry is written out, one entry per file it matches in the staging directory.
rpm_config() { # SIDE
	# Run in the staging directory, where the globs are matched: no path goes into the
	# shell commands awk runs. A glob entry that matches nothing, or holds a line this does
	# not carry over, stops the build (nfpm refuses an empty glob too).
	(cd "$stage" && awk -v config="pedos-updates-$1.yaml" '
	function fail(why) {
		printf "packages.sh: %s: %s\n", config, why >"/dev/stderr"
		failed = 1
		exit 1
	}
	function expand(   cmd, f, n, parts, kind, found) {
		pending = 0
		if (packager == "deb")
			return # for the DEB alone
		if (dst !~ /\/$/)
			fail("the glob entry " src " needs a dst ending in /")
		kind = dst ~ /^\/usr\/share\/licenses\// ? "license" : "doc"
		cmd = "for f in " src "; do if [ -f \"$f\" ]; then echo \"$f\"; else echo \"?$f\"; fi; done"
		while ((cmd | getline f) > 0) {
			if (f == "?" src)
				fail("the glob " src " matches no file")
			if (f ~ /^[?]/)
				fail("the glob " src " matches " substr(f, 2) ", which is not a file")
			n = split(f, parts, "/")
			print "  - src: " f "\n    dst: " dst parts[n] "\n    type: " kind "\n    file_info: {mode: 0644}"
			found++
		}
		close(cmd)
		if (!found)
			fail("the glob " src " matches no file")
	}
	skip { skip = 0; next }
	/^description: [|]-$/ { skip = 1 }
	pending && /^    / {
		if ($1 == "dst:")
			dst = $2
		else if ($1 == "packager:")
			packager = $2
		else if ($0 != "    file_info: {mode: 0644}")
			fail("the glob entry " src " has a line the RPM copy would lose: " $0)
		next
	}
	pending { expand() }
	/^  - src: .*[*?[]/ { pending = 1; src = $3; dst = ""; packager = ""; next }
	/^    dst: \/usr\/share\/man\// { print; print "    type: doc"; next }
	{ print }
	END {
		if (!failed && pending)
			expand()
		if (failed)
			exit 1
	}
	' "repo/packaging/nfpm/pedos-updates-$1.yaml" >"pedos-updates-$1.rpm.yaml")
}
rpm_config dom0
rpm_config vm

cd "$stage"
"$stage/tools/nfpm" package --config "$stage/pedos-updates-dom0.rpm.yaml" --packager rpm --target "$out/"
"$stage/tools/nfpm" package --config "$stage/pedos-updates-vm.rpm.yaml" --packager rpm --target "$out/"
"$stage/tools/nfpm" package --config "$stage/repo/packaging/nfpm/pedos-updates-vm.yaml" --packager deb --target "$out/"
