package repometa

import (
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"pedos.dev/updates/internal/rpmver"
)

// NEVRA names one build of a package.
type NEVRA struct {
	Name string
	EVR  rpmver.EVR
	Arch string
}

func (p NEVRA) String() string { return p.Name + "-" + p.EVR.String() + "." + p.Arch }

// Package is one package file: what it is, its size and its SHA-256.
type Package struct {
	NEVRA
	Size   int64
	SHA256 [sha256Size]byte
}

// Bounds on primary metadata (it is signed, but a bug or a hostile
// publisher must not exhaust dom0's memory): a distribution's update
// repository lists tens of thousands of packages.
const (
	maxPackages   = 200_000
	maxTokenBytes = 1 << 20 // one XML token: a tag with its attributes, or a text
	maxNameLen    = 256
	maxArchLen    = 32
)

var (
	packageNameChars = regexp.MustCompile(`^[A-Za-z0-9_+][A-Za-z0-9._+-]*$`)
	archChars        = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	sha256Hex        = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

const commonNS = "http://linux.duke.edu/metadata/common"

// primaryParser reads primary.xml token by token, so memory grows with the
// number of packages (a few hundred bytes each), not with the file.
type primaryParser struct {
	in         io.Reader
	d          *xml.Decoder
	read       int64 // bytes taken from in
	tokenStart int64 // input offset where the current token began
}

// Read feeds the decoder and stops it when one token grows past
// maxTokenBytes (encoding/xml would otherwise buffer it whole).
func (p *primaryParser) Read(b []byte) (int, error) {
	if p.read-p.tokenStart > maxTokenBytes {
		return 0, fmt.Errorf("an XML token is longer than %d bytes", maxTokenBytes)
	}
	n, err := p.in.Read(b)
	p.read += int64(n)
	return n, err
}

func (p *primaryParser) next() (xml.Token, error) {
	p.tokenStart = p.d.InputOffset()
	return p.d.Token()
}

// ParsePrimary reads a decompressed primary.xml. Call it only once the
// file's size and SHA-256 have matched the signed repomd.xml (verify.md §2
// step 2). It keeps, per package, only what the checks use.
func ParsePrimary(signed io.Reader) ([]Package, error) {
	p := &primaryParser{in: signed}
	p.d = xml.NewDecoder(p)
	var pkgs []Package
	declared := -1
	for depth := 0; ; {
		tok, err := p.next()
		if err == io.EOF && depth == 0 && declared >= 0 {
			if declared != len(pkgs) {
				return nil, fmt.Errorf("primary: declares %d packages but lists %d", declared, len(pkgs))
			}
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("primary: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && declared < 0 && t.Name == xml.Name{Space: commonNS, Local: "metadata"}:
				if declared, err = strconv.Atoi(attr(t, "packages")); err != nil || declared < 0 {
					return nil, errors.New(`primary: <metadata packages="N"> is missing or not a number`)
				}
			case depth == 2 && t.Name == xml.Name{Space: commonNS, Local: "package"} && attr(t, "type") == "rpm":
				if len(pkgs) == maxPackages {
					return nil, fmt.Errorf("primary: lists more than %d packages", maxPackages)
				}
				pkg, err := p.pkg()
				if err != nil {
					return nil, fmt.Errorf("primary: package %d: %w", len(pkgs)+1, err)
				}
				pkgs = append(pkgs, pkg)
				depth--
			default:
				return nil, fmt.Errorf("primary: unexpected element <%s> at depth %d", truncate(t.Name.Local), depth)
			}
		case xml.EndElement:
			depth--
		}
	}
}

// pkg reads one <package> after its start tag, up to its end tag: the
// fields listed below exactly once each, anything else skipped.
func (p *primaryParser) pkg() (Package, error) {
	var pkg Package
	var epoch, version, release string
	seen := map[string]bool{}
	for depth := 1; depth > 0; {
		tok, err := p.next()
		if err != nil {
			return pkg, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			depth--
			continue
		case xml.StartElement:
			depth++
			if depth != 2 || t.Name.Space != commonNS {
				continue
			}
			field := t.Name.Local
			switch field {
			case "name", "arch", "checksum", "version", "size":
				if seen[field] {
					return pkg, fmt.Errorf("<%s> given twice", field)
				}
				seen[field] = true
			default:
				continue
			}
			switch field {
			case "name":
				pkg.Name, err = p.text(maxNameLen, packageNameChars)
				depth--
			case "arch":
				pkg.Arch, err = p.text(maxArchLen, archChars)
				depth--
			case "checksum":
				err = p.checksum(t, &pkg.SHA256)
				depth--
			case "version":
				epoch, version, release = attr(t, "epoch"), attr(t, "ver"), attr(t, "rel")
			case "size":
				pkg.Size, err = strconv.ParseInt(attr(t, "package"), 10, 64)
				if err != nil || pkg.Size < 0 {
					err = errors.New(`<size package="N"> is not a size`)
				}
			}
			if err != nil {
				return pkg, fmt.Errorf("<%s>: %w", field, err)
			}
		}
	}
	if len(seen) != 5 {
		return pkg, errors.New("lacks one of <name>, <arch>, <version>, <checksum>, <size>")
	}
	var err error
	if pkg.EVR, err = rpmver.New(epoch, version, release); err != nil {
		return pkg, fmt.Errorf("%s: %w", pkg.Name, err)
	}
	return pkg, nil
}

// text reads the character data of an element up to its end tag.
func (p *primaryParser) text(maxLen int, allowed *regexp.Regexp) (string, error) {
	var s []byte
	for {
		tok, err := p.next()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(s)+len(t) > maxLen {
				return "", fmt.Errorf("longer than %d bytes", maxLen)
			}
			s = append(s, t...)
		case xml.StartElement:
			return "", errors.New("holds an element where text belongs")
		case xml.EndElement:
			if !allowed.Match(s) {
				return "", fmt.Errorf("%q has characters that are not allowed", truncate(string(s)))
			}
			return string(s), nil
		}
	}
}

// checksum reads <checksum type="sha256" pkgid="YES">HEX</checksum>: the
// SHA-256 of the whole package file (verify.md §2 step 5).
func (p *primaryParser) checksum(start xml.StartElement, sum *[sha256Size]byte) error {
	if attr(start, "type") != "sha256" {
		return errors.New(`type is not "sha256" (createrepo_c --checksum=sha256)`)
	}
	text, err := p.text(2*sha256Size, sha256Hex)
	if err != nil {
		return err
	}
	_, err = hex.Decode(sum[:], []byte(text))
	return err
}

// attr is the value of an attribute without a namespace, or "".
func attr(e xml.StartElement, local string) string {
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
