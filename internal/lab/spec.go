package lab

import (
	"fmt"
	"strings"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testrepo"
)

// Scriptlet tags of the main header (rpmtag.h), for packages whose
// install must fail in a known way.
const (
	tagPreIn      = 1023
	tagPostIn     = 1024
	tagPreInProg  = 1085
	tagPostInProg = 1086
)

// packageSpec is one package to publish.
type packageSpec struct {
	pkg testrepo.Package
	// key signs the package: "" the publish's key, "none" unsigned.
	key string
}

// parseSpecs reads publish's package arguments. Each package starts with
// NAME-[EPOCH:]VERSION-RELEASE; the KEY=VALUE words after it, in the same
// argument or the following ones, describe it:
//
//	arch=A size=BYTES requires=R provides=R conflicts=R obsoletes=R   (testrepo's)
//	key=NAME|none    sign with another lab key, or leave unsigned
//	pre=fail         a %pre scriptlet that exits 1 (the install fails)
//	post=fail        a %post scriptlet that exits 1 (rpm reports it)
//
// so `publish 'hello-1.1-1 requires=libfoo>=2.0' libfoo-2.0-1` and
// `publish hello-1.1-1 requires=libfoo>=2.0 libfoo-2.0-1` are the same.
func parseSpecs(args []string) ([]packageSpec, error) {
	var groups [][]string
	for _, arg := range args {
		for _, word := range strings.Fields(arg) {
			if !strings.Contains(word, "=") {
				groups = append(groups, []string{word})
				continue
			}
			if len(groups) == 0 {
				return nil, fmt.Errorf("package spec: %q comes before any NAME-VERSION-RELEASE", word)
			}
			groups[len(groups)-1] = append(groups[len(groups)-1], word)
		}
	}
	specs := make([]packageSpec, 0, len(groups))
	for _, g := range groups {
		s, err := parseSpec(g)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	return specs, nil
}

func parseSpec(words []string) (packageSpec, error) {
	var s packageSpec
	var testrepoWords []string
	var scripts []rpm.Entry
	for _, w := range words {
		key, value, _ := strings.Cut(w, "=")
		switch key {
		case "key":
			if value != "none" && !keyName.MatchString(value) {
				return s, fmt.Errorf("package spec %q: key=%q: not a key name or none", strings.Join(words, " "), value)
			}
			s.key = value
		case "pre", "post":
			if value != "fail" {
				return s, fmt.Errorf("package spec %q: %s=%q: only %s=fail exists", strings.Join(words, " "), key, value, key)
			}
			script, prog := uint32(tagPreIn), uint32(tagPreInProg)
			if key == "post" {
				script, prog = tagPostIn, tagPostInProg
			}
			scripts = append(scripts, rpm.StringEntry(script, "echo 'pedos-lab: failing "+key+" scriptlet' >&2; exit 1"),
				rpm.StringEntry(prog, "/bin/sh"))
		default:
			testrepoWords = append(testrepoWords, w)
		}
	}
	p, err := testrepo.ParsePackageSpec(strings.Join(testrepoWords, " "))
	if err != nil {
		return s, err
	}
	p.ExtraHeaderTags = scripts
	s.pkg = p
	return s, nil
}
