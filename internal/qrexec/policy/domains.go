package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A Domain is one line of the domains configuration (docs/qrexec-policy.md
// "Domains"). dom0 always exists, with type AdminVM.
type Domain struct {
	Name string
	Type string   // e.g. AppVM, TemplateVM, DispVM; @type:T matches it
	Tags []string // @tag:T matches any of them
	// CID is the domain's vsock context id (0: none). The daemon identifies a
	// vsock caller by its CID and by nothing the caller says.
	CID uint32
	// Agent is where the domain's agent listens, as a qrexec address; empty
	// means SOCKDIR/NAME/agent.sock.
	Agent string
	// DefaultDispVM is the template a target of @dispvm resolves to.
	DefaultDispVM string
	// Template is, for a disposable domain, the template it was made from;
	// a source of @dispvm:NAME matches it.
	Template string
}

// Domains is the dom0 configuration of the domains policy rules name.
type Domains struct {
	byName map[string]Domain
	byCID  map[uint32]string
}

// LoadDomains reads the domains configuration file at path.
func LoadDomains(path string) (*Domains, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("domains config: %w", err)
	}
	return ParseDomains(path, data)
}

// ParseDomains parses a domains configuration: one domain per line,
//
//	NAME [type=T] [tags=T1,T2] [cid=N] [default_dispvm=NAME] [template=NAME] [agent=ADDRESS...]
//
// where agent= takes the rest of the line. '#' starts a comment line.
func ParseDomains(file string, data []byte) (*Domains, error) {
	d := &Domains{
		byName: map[string]Domain{Dom0: {Name: Dom0, Type: "AdminVM"}},
		byCID:  map[uint32]string{},
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxDomainsLine+2) // the line, and its "\r\n" or more to tell it too long
	lineNo := 1
	for ; sc.Scan(); lineNo++ {
		if len(sc.Bytes()) > maxDomainsLine {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", file, lineNo, maxDomainsLine)
		}
		// The policy files' rule: a line must read as it acts (the
		// scanner has taken a CRLF's carriage return off).
		line := sc.Text()
		if err := checkLine(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, lineNo, err)
		}
		line = strings.Trim(line, " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		dom, err := parseDomainLine(line, d)
		if err == nil && listed[dom.Name] {
			err = fmt.Errorf("domain %s listed twice", dom.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, lineNo, err)
		}
		listed[dom.Name] = true
		d.byName[dom.Name] = dom
		if dom.CID != 0 {
			d.byCID[dom.CID] = dom.Name
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return nil, fmt.Errorf("%s:%d: line longer than %d bytes", file, lineNo, maxDomainsLine)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return d, nil
}

// maxDomainsLine bounds one line of the domains configuration.
const maxDomainsLine = 64 << 10

// parseDomainLine parses one line, whose words are separated by any run
// of spaces and tabs, as in the policy files.
func parseDomainLine(line string, seen *Domains) (Domain, error) {
	name, rest := cutWord(line)
	if !ValidDomainName(name) {
		return Domain{}, fmt.Errorf("invalid domain name %q", name)
	}
	dom := Domain{Name: name, Type: "AppVM"}
	if name == Dom0 {
		dom.Type = "AdminVM"
	}
	given := map[string]bool{}
	for rest != "" {
		var field string
		if strings.HasPrefix(rest, "agent=") {
			field, rest = rest, ""
		} else {
			field, rest = cutWord(rest)
		}
		key, value, ok := strings.Cut(field, "=")
		switch {
		case !ok:
			return Domain{}, fmt.Errorf("%q is not KEY=VALUE", field)
		case given[key]:
			// One value each: with "last wins", a line would not read as it acts.
			return Domain{}, fmt.Errorf("%s= given twice", key)
		case name == Dom0 && key != "tags":
			return Domain{}, fmt.Errorf("dom0 takes only tags=, not %s=", key)
		}
		given[key] = true
		if err := dom.set(key, value, seen); err != nil {
			return Domain{}, err
		}
	}
	return dom, nil
}

// cutWord cuts s, which starts with a word, after that word; rest starts
// at the next word.
func cutWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

func (dom *Domain) set(key, value string, seen *Domains) error {
	switch key {
	case "type":
		if !onlyChars(value, "_", 1) {
			return fmt.Errorf("invalid type %q", value)
		}
		dom.Type = value
	case "tags":
		dom.Tags = strings.Split(value, ",")
		for _, tag := range dom.Tags {
			if !onlyChars(tag, "_.-", 1) {
				return fmt.Errorf("invalid tag %q", tag)
			}
		}
	case "cid":
		cid, err := strconv.ParseUint(value, 10, 32)
		// 0–2 are the hypervisor, loopback and host; 1 is allowed for tests.
		if err != nil || cid == 0 || cid == 2 || cid == 0xffffffff {
			return fmt.Errorf("invalid cid %q", value)
		}
		if other, dup := seen.byCID[uint32(cid)]; dup {
			return fmt.Errorf("cid %d already belongs to %s", cid, other)
		}
		dom.CID = uint32(cid)
	case "agent":
		if value == "" {
			return fmt.Errorf("empty agent address")
		}
		dom.Agent = value
	case "default_dispvm":
		if !ValidDomainName(value) || value == Dom0 {
			// dom0 is no template for disposable domains: such a
			// disposable would be a second dom0.
			return fmt.Errorf("invalid default_dispvm %q", value)
		}
		dom.DefaultDispVM = value
	case "template":
		if !ValidDomainName(value) || value == Dom0 { // as default_dispvm
			return fmt.Errorf("invalid template %q", value)
		}
		dom.Template = value
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}

// Lookup returns the named domain.
func (d *Domains) Lookup(name string) (Domain, bool) {
	dom, ok := d.byName[name]
	return dom, ok
}

// ByCID returns the name of the domain with the vsock context id cid.
func (d *Domains) ByCID(cid uint32) (string, bool) {
	name, ok := d.byCID[cid]
	return name, ok
}

// Names returns the names of every domain but dom0, sorted.
func (d *Domains) Names() []string {
	var names []string
	for name := range d.byName {
		if name != Dom0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
