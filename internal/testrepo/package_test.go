package testrepo

import (
	"os"
	"os/exec"
	"reflect"
	"testing"
)

func TestParsePackageSpec(t *testing.T) {
	got, err := ParsePackageSpec("hello-2:1.1-1.fc41 arch=x86_64 size=10 requires=libfoo>=2.0 requires=bash provides=greeting")
	if err != nil {
		t.Fatal(err)
	}
	want := Package{Name: "hello", Epoch: 2, Version: "1.1", Release: "1.fc41", Arch: "x86_64", PayloadSize: 10,
		Requires: []string{"libfoo>=2.0", "bash"}, Provides: []string{"greeting"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The cap itself is allowed (MaxPayloadSize: "at most").
	if p, err := ParsePackageSpec("hello-1-1 size=1073741824"); err != nil || p.PayloadSize != MaxPayloadSize {
		t.Errorf("a payload of MaxPayloadSize: %+v, %v", p, err)
	}
	for _, bad := range []string{"", "hello", "hello-1", "hello-1-1 size=-1", "hello-1-1 size=99999999999999", "hello-1-1 size=1073741825", "hello-1-1 colour=red", "hello-x:1-1"} {
		if _, err := ParsePackageSpec(bad); err == nil {
			t.Errorf("ParsePackageSpec(%q) succeeded", bad)
		}
	}
}

func TestBuildWithRPMBuild(t *testing.T) {
	if _, err := exec.LookPath("rpmbuild"); err != nil {
		t.Skip("rpmbuild not installed")
	}
	signer, err := NewSigner(KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := ParsePackageSpec("hello-1.1-1 requires=bash size=1000")
	path, err := BuildWithRPMBuild(t.TempDir(), p, signer)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := Parts(data); err != nil {
		t.Fatal(err)
	}
}

// The parts of a spec name the package's file, which the lab writes as root: a part that could
// leave the directory, or that a shell or dnf would read otherwise, is refused.
func TestParsePackageSpecRefusesOddParts(t *testing.T) {
	for _, spec := range []string{
		"b-1-1 arch=x/../../PWN", "a-1-1 arch=x86_64;rm", "x/y-1-1", "c-1/2-1", "c-1-1/2",
		"-x-1-1", ".x-1-1", "a-1-1\x1b[2J", "a-1-1 arch=x.y",
	} {
		if p, err := ParsePackageSpec(spec); err == nil {
			t.Errorf("%q: accepted as %+v", spec, p)
		}
	}
	for _, spec := range []string{"fuzz-tools-0.9~rc1-1.fc41 arch=x86_64", "lib_x+y-2:1.0^git1-0.1 arch=i686", "kernel-6.1-3"} {
		if _, err := ParsePackageSpec(spec); err != nil {
			t.Errorf("%q: %v", spec, err)
		}
	}
}
