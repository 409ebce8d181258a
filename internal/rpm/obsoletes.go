package rpm

import (
	"bytes"
	"encoding/binary"

	"pedos.dev/updates/internal/rpmver"
)

// The main header's Obsoletes (rpmbuild writes the three together, one
// value per Obsoletes: line).
const (
	TagObsoleteName    = 1090
	TagObsoleteFlags   = 1114
	TagObsoleteVersion = 1115
)

// Obsolete is one of a package's Obsoletes: installing the package replaces
// every installed package of that name whose version is in the range (dnf
// renames packages so).
type Obsolete struct {
	Name    string `json:"name"`
	Flags   uint32 `json:"flags"`             // rpm's sense flags (rpmver.SenseLess, ...)
	Version string `json:"version,omitempty"` // [EPOCH:]VERSION[-RELEASE]; empty: every version
}

// Covers tells whether installing the package replaces the installed
// package name-evr.
func (o Obsolete) Covers(name string, evr rpmver.EVR) bool {
	return name == o.Name && rpmver.InRange(evr, o.Flags, o.Version)
}

// readObsoletes reads the Obsoletes of a verified main header. They only
// ever excuse an update from the withholding check (verify.md §2 step 6),
// so tags that do not agree are read as no Obsoletes, which keeps that
// check whole, rather than refusing a package rpm itself would install.
func readObsoletes(h *Header) []Obsolete {
	names, hasNames := h.find(TagObsoleteName)
	flags, hasFlags := h.find(TagObsoleteFlags)
	versions, hasVersions := h.find(TagObsoleteVersion)
	if !hasNames || !hasFlags || !hasVersions || names.Type != typeStringArray || flags.Type != typeInt32 ||
		versions.Type != typeStringArray || flags.Count != names.Count || versions.Count != names.Count {
		return nil
	}
	// The header parser checked that each array holds Count NUL-ended
	// strings, or Count 4-byte integers; a header made otherwise gets none.
	nameList := bytes.Split(bytes.TrimSuffix(names.Data, []byte{0}), []byte{0})
	versionList := bytes.Split(bytes.TrimSuffix(versions.Data, []byte{0}), []byte{0})
	if len(nameList) != int(names.Count) || len(versionList) != int(names.Count) || len(flags.Data) != 4*int(names.Count) {
		return nil
	}
	obsoletes := make([]Obsolete, names.Count)
	for i := range obsoletes {
		obsoletes[i] = Obsolete{Name: string(nameList[i]), Flags: binary.BigEndian.Uint32(flags.Data[4*i:]), Version: string(versionList[i])}
	}
	return obsoletes
}
