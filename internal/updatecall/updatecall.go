// Package updatecall is what dom0's front end (internal/frontend) and the
// UpdateVM's pedos-download-dom0-updates (internal/updatevm) agree on, and
// nothing else: the actions the UpdateVM carries out for dom0, the members
// of the tar stream dom0 ships it (overview.md step 2), and the dom0
// service it delivers to (step 4). Each side imports this package and
// never the other's: dom0's front end links none of the UpdateVM's
// decompressors and network code, and the UpdateVM none of dom0's.
package updatecall

import (
	"slices"
	"strings"
)

// The actions the UpdateVM carries out for dom0 (overview.md, "Front
// end"): a download of the transaction, or a query answered there alone.
// dom0's remove needs no UpdateVM.
var (
	DownloadActions = []string{"upgrade", "install", "reinstall", "downgrade", "upgrade-to"}
	QueryActions    = []string{"list", "search", "info"}
)

// IsQuery reports whether action is answered by the UpdateVM alone.
func IsQuery(action string) bool { return slices.Contains(QueryActions, action) }

// IsDownload reports whether action downloads a transaction for dom0.
func IsDownload(action string) bool { return slices.Contains(DownloadActions, action) }

// The members of the tar stream dom0 ships to the UpdateVM (overview.md
// step 2), by their names in the stream.
const (
	SyncRPMDB       = "rpmdb.hdr"          // rpmdb --exportdb of dom0's database
	SyncReleaseVer  = "pedos/releasever"   // dnf's $releasever in dom0
	SyncPinnedRepos = "pedos/pinned-repos" // repo ids whose metadata dom0 verifies
	SyncKeyring     = "pedos/keyring"      // where dom0's keyring is (updates.conf keyring)
	SyncReposDir    = "etc/yum.repos.d"    // dom0's network repository definitions
	SyncDNFConf     = "etc/dnf/dnf.conf"   // dom0's dnf configuration
	SyncDNFVarsDir  = "etc/dnf/vars"       // dnf variables
	SyncKeysDir     = "etc/pki/rpm-gpg"    // the keys of dom0's keyring, whatever its path
)

// ReceiveService is dom0's qrexec service that takes the delivery.
const ReceiveService = "PedOS.ReceiveUpdates"

// SessionIDLength is the length of the session id dom0's front end makes
// (lowercase hex, 128 bits: dom0.SessionIDLength) and passes to the UpdateVM,
// which sends it back as ReceiveService's argument.
const SessionIDLength = 32

// ValidSessionID reports whether id has the form of a session id, so that
// the UpdateVM refuses a mistyped one before it downloads anything (dom0
// checks the id itself when the delivery arrives).
func ValidSessionID(id string) bool {
	return len(id) == SessionIDLength && strings.Trim(id, "0123456789abcdef") == ""
}
