package repometa

import (
	"bufio"
	"bytes"
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

// Package is one package file: what it is, its size and its SHA-256. In
// a primary, Size is 0 for packages whose size was not asked for.
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
// number of packages (a few hundred bytes each), not with the file. It is
// the decoder's byte source, which lets it bound tokens and skip elements.
type primaryParser struct {
	r          *bufio.Reader
	d          *xml.Decoder
	tokenBytes int     // bytes the decoder took for the current token
	lastTwo    [2]byte // the last two bytes the decoder took
	sizesFor   map[[sha256Size]byte]bool
}

// ReadByte feeds the decoder and stops it when one token grows past
// maxTokenBytes (encoding/xml would otherwise buffer it whole).
func (p *primaryParser) ReadByte() (byte, error) {
	if p.tokenBytes++; p.tokenBytes > maxTokenBytes {
		return 0, fmt.Errorf("an XML token is longer than %d bytes", maxTokenBytes)
	}
	b, err := p.r.ReadByte()
	p.lastTwo = [2]byte{p.lastTwo[1], b}
	return b, err
}

// Read is never called: the decoder reads through ReadByte.
func (p *primaryParser) Read([]byte) (int, error) { return 0, errors.New("primary: unexpected Read") }

func (p *primaryParser) next() (xml.Token, error) {
	p.tokenBytes = 0
	return p.d.Token()
}

// skip passes over the rest of an element whose start tag has been read
// (empty: it was <x/>) and its end tag. The content is not tokenized but
// skipped up to the literal end tag: tokenizing it is where the time would
// go (<format> and <description> are most of a primary). createrepo_c
// output always has the end tag there. A publisher who hid one in a CDATA
// section would mostly get unbalanced markup, an error; at worst skipped
// content read differently, and only signed bytes get here.
func (p *primaryParser) skip(local string, empty bool) error {
	end := []byte("</" + local + ">")
	for !empty {
		buf, err := p.r.Peek(max(p.r.Buffered(), len(end)))
		if i := bytes.Index(buf, end); i >= 0 {
			_, _ = p.r.Discard(i)
			break
		}
		if err == io.EOF {
			// Also what a prefixed element (<x:name>) meets: its end tag is not the literal.
			return fmt.Errorf("no </%s> before the end of the file", truncate(local))
		} else if err != nil {
			return err
		}
		_, _ = p.r.Discard(len(buf) - len(end) + 1)
	}
	tok, err := p.next()
	if _, ok := tok.(xml.EndElement); !ok && err == nil {
		err = fmt.Errorf("no </%s> where expected", truncate(local))
	}
	return err
}

// ParsePrimary reads a decompressed primary.xml. Call it only once the
// file's size and SHA-256 have matched the signed repomd.xml (verify.md §2
// step 2). It keeps, per package, only what the checks use. A package's
// size is read only when its SHA-256 is in sizesFor (nil: always), that
// is for the packages the batch received: <size> comes late in a package,
// and passing over the rest of the others halves the time.
func ParsePrimary(signed io.Reader, sizesFor map[[sha256Size]byte]bool) ([]Package, error) {
	p := &primaryParser{r: bufio.NewReaderSize(signed, 64<<10), sizesFor: sizesFor}
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

// The children of <package> that pkg reads, as bits of a set.
var packageFields = map[string]int{"name": 1, "arch": 2, "version": 4, "checksum": 8, "size": 16}

const identityFields = 1 | 2 | 4 | 8 // all but the size

// pkg reads one <package> after its start tag, up to its end tag: the
// fields above exactly once each, any other child skipped.
func (p *primaryParser) pkg() (Package, error) {
	var pkg Package
	var epoch, version, release string
	seen := 0
	for {
		if seen&identityFields == identityFields && (seen&packageFields["size"] != 0 || p.sizesFor != nil && !p.sizesFor[pkg.SHA256]) {
			if err := p.skip("package", false); err != nil { // all that is needed: pass over the rest quickly
				return pkg, err
			}
			break
		}
		tok, err := p.next()
		if err != nil {
			return pkg, err
		}
		if _, ok := tok.(xml.EndElement); ok {
			break
		}
		t, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		empty := p.lastTwo[0] == '/'
		field := ""
		if bit := packageFields[t.Name.Local]; bit != 0 && t.Name.Space == commonNS {
			if seen&bit != 0 {
				return pkg, fmt.Errorf("<%s> given twice", t.Name.Local)
			}
			seen |= bit
			field = t.Name.Local
		}
		switch field {
		case "name":
			pkg.Name, err = p.text(maxNameLen, packageNameChars)
		case "arch":
			pkg.Arch, err = p.text(maxArchLen, archChars)
		case "checksum":
			err = p.checksum(t, &pkg.SHA256)
		case "version":
			epoch, version, release = attr(t, "epoch"), attr(t, "ver"), attr(t, "rel")
			err = p.skip(t.Name.Local, empty)
		case "size":
			if pkg.Size, err = strconv.ParseInt(attr(t, "package"), 10, 64); err != nil || pkg.Size < 0 {
				return pkg, errors.New(`<size package="N"> is not a size`)
			}
			err = p.skip(t.Name.Local, empty)
		default:
			err = p.skip(t.Name.Local, empty)
		}
		if err != nil {
			return pkg, fmt.Errorf("<%s>: %w", t.Name.Local, err)
		}
	}
	if seen&identityFields != identityFields || seen&packageFields["size"] == 0 && (p.sizesFor == nil || p.sizesFor[pkg.SHA256]) {
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
	if typ := attr(start, "type"); typ != "sha256" {
		return fmt.Errorf(`type %q is not "sha256" (createrepo_c --checksum=sha256)`, truncate(typ))
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
