// Package e2e holds the end-to-end tests of the update (issue 6): the real
// binaries in a real lab (internal/lab), with real dnf, rpm and
// createrepo_c. It has no code of its own outside its tests.
package e2e
