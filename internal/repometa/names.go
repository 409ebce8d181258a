// Package repometa is dom0's check of a batch of packages against the
// newest signed state of each repository (verify.md §2, threats M1–M9):
// the metadata signature, rollback, freeze, membership, withholding and
// downgrade checks, and the freshness state that only moves forward.
//
// Nothing here is parsed before its signature (or its digest in signed
// metadata) has been checked, except the OpenPGP armor and packets, which
// go-crypto reads.
package repometa

import (
	"errors"
	"regexp"

	"pedos.dev/updates/internal/rpm"
)

// FileKind says what a file in the staging directory is.
type FileKind int

const (
	FilePackage         FileKind = iota + 1 // NAME.rpm
	FileRepomd                              // repomd--REPOID.xml
	FileRepomdSignature                     // repomd--REPOID.xml.asc
	FilePrimary                             // primary--REPOID.xml, decompressed
)

// MaxSize is the largest file of this kind the receiver should accept
// (0 for packages: they count against the stream's total only).
func (k FileKind) MaxSize() int64 {
	switch k {
	case FileRepomd:
		return 1 << 20
	case FileRepomdSignature:
		return 64 << 10
	case FilePrimary:
		return 1 << 30
	}
	return 0
}

// repoIDExpr is a dnf repository id as updates.conf accepts it.
const repoIDExpr = `[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}`

var (
	// RepoIDPattern matches a whole repository id: updates.conf's
	// repo.ID.metadata_key and the freshness state's keys.
	RepoIDPattern = regexp.MustCompile(`^` + repoIDExpr + `$`)
	// metadataName is docs/freshness.md's naming: none of these ends in
	// .rpm, so metadata can never be taken for a package or the reverse.
	metadataName = regexp.MustCompile(`^(repomd|primary)--(` + repoIDExpr + `)\.xml(\.asc)?$`)
)

// Classify tells what a staged file is and, for metadata, which repository
// it belongs to. The error never repeats the untrusted name (verify.md §1).
func Classify(untrustedName string) (kind FileKind, repoID string, err error) {
	if rpm.CheckFileName(untrustedName) == nil { // verify.md §1's rule
		return FilePackage, "", nil
	}
	m := metadataName.FindStringSubmatch(untrustedName)
	switch {
	case m == nil:
		return 0, "", errors.New("repometa: file name is neither a package nor repository metadata")
	case m[1] == "repomd" && m[3] == "":
		return FileRepomd, m[2], nil
	case m[1] == "repomd":
		return FileRepomdSignature, m[2], nil
	case m[3] == "":
		return FilePrimary, m[2], nil
	}
	return 0, "", errors.New("repometa: primary metadata carries no signature of its own")
}
