package repometa

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Repomd is what dom0 uses of a repomd.xml whose signature it has checked.
type Repomd struct {
	Revision  uint64
	Timestamp time.Time // the newest <timestamp> of its data entries
	Primary   PrimaryRef
}

// PrimaryRef is the primary metadata as repomd.xml lists it. Dom0 receives
// the primary decompressed, so it checks the open (decompressed) size and
// SHA-256 and never needs the compressed file's.
type PrimaryRef struct {
	Location     string
	OpenSize     int64
	OpenChecksum [sha256Size]byte
}

const sha256Size = 32

type repomdXML struct {
	XMLName  xml.Name `xml:"http://linux.duke.edu/metadata/repo repomd"`
	Revision string   `xml:"revision"`
	Data     []struct {
		Type         string `xml:"type,attr"`
		Timestamp    string `xml:"timestamp"`
		OpenSize     string `xml:"open-size"`
		OpenChecksum struct {
			Type  string `xml:"type,attr"`
			Value string `xml:",chardata"`
		} `xml:"open-checksum"`
		Location struct {
			Href string `xml:"href,attr"`
		} `xml:"location"`
	} `xml:"data"`
}

// lastRecordableSecond is 9999-12-31T23:59:59Z.
const lastRecordableSecond = 253402300799

// ParseRepomd reads a repomd.xml. Call it only on bytes whose signature
// has been verified (verify.md §2 step 1 before step 2).
func ParseRepomd(signed []byte) (*Repomd, error) {
	var x repomdXML
	d := xml.NewDecoder(bytes.NewReader(signed))
	if err := d.Decode(&x); err != nil {
		return nil, fmt.Errorf("repomd.xml: %w", err)
	}
	revision, err := strconv.ParseUint(x.Revision, 10, 63)
	if err != nil {
		return nil, fmt.Errorf("repomd.xml: <revision> %q is not a decimal number below 2^63, so rollback cannot be checked", truncate(x.Revision))
	}
	md := &Repomd{Revision: revision}
	primaries := 0
	for _, data := range x.Data {
		if data.Timestamp != "" {
			seconds, err := strconv.ParseInt(data.Timestamp, 10, 64)
			// After year 9999 a time has no RFC 3339 form: the state and
			// the result could not record it, once the batch was published.
			if err != nil || seconds < 0 || seconds > lastRecordableSecond {
				return nil, fmt.Errorf("repomd.xml: <timestamp> of %q data is not a time in seconds up to the year 9999", truncate(data.Type))
			}
			md.Timestamp = later(md.Timestamp, time.Unix(seconds, 0).UTC())
		}
		if data.Type != "primary" {
			continue
		}
		primaries++
		sum, err := hex.DecodeString(data.OpenChecksum.Value)
		if data.OpenChecksum.Type != "sha256" {
			return nil, fmt.Errorf("repomd.xml: the primary's <open-checksum> has type %q, not sha256, so the primary cannot be checked", truncate(data.OpenChecksum.Type))
		}
		if err != nil || len(sum) != sha256Size {
			return nil, errors.New("repomd.xml: the primary entry has no sha256 <open-checksum>, so the primary cannot be checked")
		}
		size, err := strconv.ParseInt(data.OpenSize, 10, 64)
		if err != nil || size < 0 || size > FilePrimary.MaxSize() {
			return nil, fmt.Errorf("repomd.xml: the primary <open-size> is missing or over %d bytes", FilePrimary.MaxSize())
		}
		md.Primary = PrimaryRef{Location: data.Location.Href, OpenSize: size, OpenChecksum: [sha256Size]byte(sum)}
	}
	if primaries != 1 {
		return nil, fmt.Errorf("repomd.xml: lists %d primary entries, want exactly one", primaries)
	}
	if md.Timestamp.IsZero() {
		return nil, errors.New("repomd.xml: no data entry has a <timestamp>, so freshness cannot be judged")
	}
	return md, nil
}

// truncate keeps a value short enough to quote in a message.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
