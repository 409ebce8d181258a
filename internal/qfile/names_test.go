package qfile

import (
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{".a", true},
		{"..a", true},
		{"a.", true},
		{"a/b/c.rpm", true},
		{"kernel-6.6.1-1.qubes.fc41.x86_64.rpm", true},
		{"~!@#$%^&*()_+`-={}[]|\\:;\"'<>?,. ", true},
		{"żółć-日本語.txt", true},
		{"Ωmega ü.bin", true},
		{"🙂", true},
		{"", false},
		{"/abs", false},
		{"a/", false},
		{"a//b", false},
		{".", false},
		{"..", false},
		{"a/./b", false},
		{"a/../b", false},
		{"../a", false},
		{"a\nb", false},         // S2: log injection
		{"a\x01b", false},       // S2: control
		{"a\x1fb", false},       // S2: the last C0 control, just below the printable ASCII range
		{"a\x7fb", false},       // DEL
		{"a\xffb", false},       // S2: invalid UTF-8
		{"a\xc3", false},        // truncated UTF-8
		{"\xed\xa0\x80", false}, // a surrogate, not valid UTF-8
		{"a\u202eb", false},     // S2: bidi override
		{"a\u2066b", false},     // bidi isolate
		{"a\u200bb", false},     // zero-width space (format)
		{"a\u00a0b", false},     // no-break space (a separator, not a letter or symbol)
		{"a\ue000b", false},     // private use
		{"a\U000e0001b", false}, // language tag (format)
		{"a\u0378b", false},     // unassigned
		{"a\u0085b", false},     // C1 control
	} {
		if got := validName([]byte(tc.name)); got != tc.ok {
			t.Errorf("validName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// A refused name's error says which rule it broke, and never quotes the name (S2).
func TestNameProblemSaysWhich(t *testing.T) {
	for name, want := range map[string]string{
		"":           "empty",
		"/etc/x":     "absolute",
		"evil/":      "ends with /",
		"evil//x":    "component",
		"evil/../x":  "component",
		"evil\xff":   "not valid UTF-8 (byte 0xff)",
		"evil\u202e": "U+202E",
		"evil\nline": "U+000A",
	} {
		problem := nameProblem([]byte(name))
		if !strings.Contains(problem, want) {
			t.Errorf("nameProblem(%q) = %q, want it to say %q", name, problem, want)
		}
		if strings.Contains(problem, "evil") {
			t.Errorf("nameProblem(%q) quotes the name: %q", name, problem)
		}
	}
}

func TestValidSymlinkTarget(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		ok           bool
	}{
		{"d/s", "f", true},
		{"top/a/up-link", "../readme.txt", true},
		{"top/a/b/up2-link", "../../readme.txt", true},
		{"top/a/down-link", "b/deep.txt", true},
		{"top/a/b/l", "..", true},
		{"top/a/b/l", "../..", true},
		{"s", "f", true},
		{"s", "../f", false},   // a top-level link may not climb
		{"d/s", "../f", false}, // out of the top-level directory
		{"top/a/l", "../../x", false},
		{"top/a/b/l", "../../..", false},
		{"d/s", "/etc/passwd", false},
		{"d/s", "", false},
		{"top/a/l", "../", false}, // not canonical
		{"top/a/l", "./x", false},
		{"top/a/l", "x/../y", false},
		{"top/a/l", "x//y", false},
		{"top/a/l", "x/", false},
		{"top/a/l", "x\x00y", false},
		{"top/a/l", "x\ny", false},
	} {
		if got := validSymlinkTarget(tc.name, []byte(tc.target)); got != tc.ok {
			t.Errorf("validSymlinkTarget(%q, %q) = %v, want %v", tc.name, tc.target, got, tc.ok)
		}
	}
}

// FuzzName checks the name rules against independent statements of them: a valid name is a
// local path in filepath's sense, valid UTF-8 without controls, format characters or
// separators other than the ASCII space; a valid symlink target stays inside the link's
// top-level directory.
func FuzzName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a\u202eb", "żółć", "a\xff", "top/a/l"} {
		f.Add([]byte(s), []byte("../x"))
	}
	f.Fuzz(func(t *testing.T, untrustedName, untrustedTarget []byte) {
		if validName(untrustedName) {
			name := string(untrustedName)
			if !filepath.IsLocal(name) || path.Clean(name) != name || !utf8.ValidString(name) {
				t.Fatalf("validName accepted %q, which is not a clean local path", name)
			}
			for _, r := range name {
				if r != ' ' && (unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Co, unicode.Z)) {
					t.Fatalf("validName accepted %q with %U", name, r)
				}
			}
			if validSymlinkTarget(name, untrustedTarget) {
				resolved := path.Join(path.Dir(name), string(untrustedTarget))
				top, _, nested := strings.Cut(name, "/")
				if !filepath.IsLocal(resolved) || (nested && resolved != top && !strings.HasPrefix(resolved, top+"/")) {
					t.Fatalf("link %q -> %q resolves to %q, outside its top-level directory", name, untrustedTarget, resolved)
				}
			}
		}
	})
}
