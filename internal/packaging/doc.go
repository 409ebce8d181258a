// Package packaging holds the tests of the installable packages that
// scripts/packages.sh builds from packaging/ (nfpm configurations, systemd
// units, tmpfiles.d entries, install scripts) and docs/man/: each package is
// installed into a fresh root with the real rpm and dpkg, its files, modes,
// symlinks and configuration files are checked, the installed dom0
// configuration is exercised by the installed programs, and the units are
// checked with systemd-analyze. The lifecycle tests upgrade to a second build
// of the next version, reinstall, remove and purge with the scriptlets
// running in a root of their own. See docs/operations.md "Packages".
package packaging
