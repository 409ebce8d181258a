package frontend

import (
	"bytes"
	"regexp"
	"strings"

	"pedos.dev/updates/internal/rpmver"
)

// AvailableUpdate is one update --check-only found, as the UpdateVM
// reported it: its word alone, checked only for form (M1). Nothing in it
// was verified.
type AvailableUpdate struct {
	Name  string `json:"name"`
	NEVRA string `json:"nevra"`
	Repo  string `json:"repo"`
}

// Bounds on the UpdateVM's listing: a distribution's whole update set is a
// few thousand packages.
const (
	maxListingBytes   = 4 << 20
	maxAvailableLines = 20_000
)

var (
	listedName = regexp.MustCompile(`^[A-Za-z0-9_+][A-Za-z0-9._+-]{0,255}$`)
	listedArch = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)
	listedRepo = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,100}$`)
)

// parseAvailable reads the UpdateVM's listing of updates (updatevm
// CheckUpdates: NAME EPOCH VERSION RELEASE ARCH REPO, tab-separated).
// Lines that are not in that form are counted, never echoed: they are
// untrusted and were not checked. Lines past maxAvailableLines are left
// unread (cutShort).
func parseAvailable(untrusted []byte) (updates []AvailableUpdate, malformed int, cutShort bool) {
	for line := range strings.Lines(string(untrusted)) {
		if len(updates)+malformed == maxAvailableLines {
			return updates, malformed, true
		}
		if u, ok := parseAvailableLine(strings.TrimSuffix(line, "\n")); ok {
			updates = append(updates, u)
		} else {
			malformed++
		}
	}
	return updates, malformed, false
}

func parseAvailableLine(untrusted string) (AvailableUpdate, bool) {
	f := strings.Split(untrusted, "\t")
	if len(f) != 6 || !listedName.MatchString(f[0]) || !listedArch.MatchString(f[4]) || !listedRepo.MatchString(f[5]) {
		return AvailableUpdate{}, false
	}
	evr, err := rpmver.New(f[1], f[2], f[3])
	if err != nil {
		return AvailableUpdate{}, false
	}
	return AvailableUpdate{Name: f[0], NEVRA: f[0] + "-" + evr.String() + "." + f[4], Repo: f[5]}, true
}

// cappedBuffer keeps the first maxListingBytes written and drops the rest,
// so that an UpdateVM cannot fill dom0's memory. (Not an embedded
// bytes.Buffer: its WriteString would bypass the cap.)
type cappedBuffer struct {
	buf     bytes.Buffer
	dropped bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := maxListingBytes - b.buf.Len(); len(p) > room {
		b.dropped = true
		b.buf.Write(p[:room])
		return len(p), nil
	}
	return b.buf.Write(p)
}
