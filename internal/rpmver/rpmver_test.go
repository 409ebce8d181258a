package rpmver

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Known rpmvercmp results (the cases rpm's own test suite is built around).
var vercmpCases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "2.0", -1},
	{"2.0.1", "2.0.1", 0},
	{"2.0", "2.0.1", -1},
	{"2.0.1a", "2.0.1", 1},
	{"5.5p1", "5.5p2", -1},
	{"5.5p10", "5.5p1", 1},
	{"10xyz", "10.1xyz", -1},
	{"xyz10", "xyz10.1", -1},
	{"xyz.4", "8", -1},
	{"xyz.4", "2", -1},
	{"5.5p2", "5.6p1", -1},
	{"6.0", "6.0.rc1", -1},
	{"10b2", "10a1", 1},
	{"1.0aa", "1.0a", 1},
	{"10.0001", "10.1", 0},
	{"10.0001", "10.0039", -1},
	{"4.999.9", "5.0", -1},
	{"20101121", "20101122", -1},
	{"2_0", "2_0", 0},
	{"2.0", "2_0", 0},
	{"a", "a", 0},
	{"a+", "a+", 0},
	{"a+", "a_", 0},
	{"+a", "_a", 0},
	{"+_", "_+", 0},
	{"+", "_", 0},
	{"1.0~rc1", "1.0~rc1", 0},
	{"1.0~rc1", "1.0", -1},
	{"1.0", "1.0~rc1", 1},
	{"1.0~rc1", "1.0~rc2", -1},
	{"1.0~rc1~git123", "1.0~rc1", -1},
	{"1.0^", "1.0", 1},
	{"1.0^git1", "1.0", 1},
	{"1.0^git1", "1.0^git2", -1},
	{"1.0^git1", "1.01", -1},
	{"1.0^20160101", "1.0.1", -1},
	{"1.0^20160101^git1", "1.0^20160101", 1},
	{"1.0~rc1^git1", "1.0~rc1", 1},
	{"1.0^git1~pre", "1.0^git1", -1},
	{"1.0", "1.0a", -1},
	{"1a", "1.a", 0},
	{"1.é", "1.x", -1},
}

func TestVercmpKnownCases(t *testing.T) {
	for _, c := range vercmpCases {
		if got := Vercmp(c.a, c.b); got != c.want {
			t.Errorf("Vercmp(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Vercmp(c.b, c.a); got != -c.want {
			t.Errorf("Vercmp(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// TestVercmpAgainstRealRPM compares Vercmp with rpm's own rpm.vercmp (its
// Lua binding of rpmvercmp) on the known cases and on random strings made of
// the characters that matter, all in one rpm process.
func TestVercmpAgainstRealRPM(t *testing.T) {
	rpmPath, err := exec.LookPath("rpm")
	if err != nil {
		t.Skip("rpm is not installed (scripts/install-deps.sh installs it)")
	}
	var pairs [][2]string
	for _, c := range vercmpCases {
		if !strings.ContainsRune(c.a+c.b, 'é') { // keep the Lua source ASCII
			pairs = append(pairs, [2]string{c.a, c.b})
		}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	const alphabet = "0012789aAbzZ..._+~~^^"
	randomVersion := func() string {
		b := make([]byte, 1+rng.IntN(8))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 3000 {
		pairs = append(pairs, [2]string{randomVersion(), randomVersion()})
	}
	var lua strings.Builder
	lua.WriteString("%{lua: ")
	for _, p := range pairs {
		fmt.Fprintf(&lua, "print(rpm.vercmp(%q, %q) .. \" \") ", p[0], p[1]) // rpm joins print output
	}
	lua.WriteString("}")
	cmd := exec.Command(rpmPath, "--eval", lua.String())
	cmd.Env = []string{"LC_ALL=C", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rpm --eval: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(pairs) {
		t.Fatalf("rpm printed %d results for %d pairs", len(lines), len(pairs))
	}
	for i, p := range pairs {
		want, err := strconv.Atoi(lines[i])
		if err != nil {
			t.Fatalf("rpm printed %q", lines[i])
		}
		if got := Vercmp(p[0], p[1]); got != cmp.Compare(want, 0) {
			t.Errorf("Vercmp(%q, %q) = %d, rpm says %d", p[0], p[1], got, want)
		}
	}
}

// parse reads "[epoch:]version-release", the form `rpm -q --qf
// '%{EPOCH}:%{VERSION}-%{RELEASE}'` prints (an epoch of "(none)" means 0),
// to test New on whole EVRs.
func parse(untrusted string) (EVR, error) {
	epoch, rest, hasEpoch := strings.Cut(untrusted, ":")
	if !hasEpoch {
		epoch, rest = "", untrusted
	} else if epoch == "(none)" {
		epoch = ""
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return EVR{}, errors.New("rpmver: no release (want version-release)")
	}
	return New(epoch, rest[:i], rest[i+1:])
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want EVR
		ok   bool
	}{
		{"1.2-3.fc41", EVR{0, "1.2", "3.fc41"}, true},
		{"2:1.2-3", EVR{2, "1.2", "3"}, true},
		{"(none):1.2-3", EVR{0, "1.2", "3"}, true},
		{"0:1.0~rc1-0.1^git", EVR{0, "1.0~rc1", "0.1^git"}, true},
		{"4294967295:1-1", EVR{4294967295, "1", "1"}, true},
		{"4294967296:1-1", EVR{}, false},
		{"1.2", EVR{}, false},
		{"1.2-", EVR{}, false},
		{"-3", EVR{}, false},
		{"+1:1-1", EVR{}, false},
		{"x:1-1", EVR{}, false},
		{"1:1:1-1", EVR{}, false},
		{"1 .2-3", EVR{}, false},
		{"1.2-3\n", EVR{}, false},
		{"1.2-3\x00", EVR{}, false},
		{strings.Repeat("1", maxField+1) + "-1", EVR{}, false},
	} {
		got, err := parse(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parse(%q) = %+v, %v; want %+v, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0-1", "1.0-1", 0},
		{"1.0-1", "1.0-2", -1},
		{"1:1.0-1", "2.0-1", 1},
		{"0:2.0-1", "2.0-1", 0},
		{"1.0-1.fc41", "1.0-1.fc41~bootstrap", 1},
		{"2:0.1-1", "10:0.1-1", -1},
	} {
		a, errA := parse(c.a)
		b, errB := parse(c.b)
		if errA != nil || errB != nil {
			t.Fatalf("parse: %v, %v", errA, errB)
		}
		if got := Compare(a, b); got != c.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if s := (EVR{3, "1", "2"}).String(); s != "3:1-2" {
		t.Errorf("String = %q", s)
	}
}

// FuzzEVR checks that New (through parse) accepts only what String gives back unchanged
// (up to the "(none)" and "0:" spellings of epoch 0), and that comparison is
// reflexive and antisymmetric on any strings.
func FuzzEVR(f *testing.F) {
	f.Add("1:1.0~rc1-2.fc41", "1.0^git1-1")
	f.Add("1.0-1", "1.0-1")
	f.Add("(none):a.b-c", "0:a_b-c")
	f.Fuzz(func(t *testing.T, a, b string) {
		if Vercmp(a, a) != 0 || Vercmp(a, b) != -Vercmp(b, a) {
			t.Fatalf("Vercmp not antisymmetric on %q, %q", a, b)
		}
		evr, err := parse(a)
		if err != nil {
			return
		}
		again, err := parse(evr.String())
		if err != nil || again != evr {
			t.Fatalf("parse(%q) = %+v does not round-trip: %+v, %v", a, evr, again, err)
		}
		if other, err := parse(b); err == nil && Compare(evr, other) != -Compare(other, evr) {
			t.Fatalf("Compare not antisymmetric on %q, %q", a, b)
		}
	})
}

// InRange matches a dependency's range as rpm does: a missing epoch is 0,
// a missing release matches every release, no comparison covers every
// version, and a version rpm would not write covers nothing.
func TestInRange(t *testing.T) {
	const lt, le, eq, ge, gt = SenseLess, SenseLess | SenseEqual, SenseEqual, SenseGreater | SenseEqual, SenseGreater
	evr := EVR{Epoch: 0, Version: "1.0", Release: "3"}
	for _, c := range []struct {
		flags   uint32
		version string
		want    bool
	}{
		{0, "", true},
		{0, "9.9", true}, // no comparison: every version
		{lt, "", true},   // no version: every version, as rpm reads a versionless dependency
		{lt, "2.0", true},
		{lt, "1.0", false},
		{le, "1.0", true}, // no release: every release of 1.0
		{lt, "1.0-4", true},
		{lt, "1.0-3", false},
		{eq, "1.0-3", true},
		{eq, "0:1.0-3", true},
		{eq, "1:1.0-3", false},
		{lt, "1:0.1", true}, // the epoch first
		{ge, "1.0", true},
		{gt, "1.0", false},
		{gt, "1.0-2", true},
		{gt, "0.9", true},
		{lt | 0x1000000, "2.0", true}, // other bits rpm sets beside the sense
		{lt, "2.0-", false},           // not a version rpm writes
		{lt, "x:2.0", false},
		{gt, "x:2.0", false}, // refused, not read as a zero version below every one
		{lt, "2.0 || 3", false},
		{lt, ":", false},
	} {
		if got := InRange(evr, c.flags, c.version); got != c.want {
			t.Errorf("InRange(%s, %#x, %q) = %t, want %t", evr, c.flags, c.version, got, c.want)
		}
	}
}
