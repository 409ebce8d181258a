package lab

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseSpecs(t *testing.T) {
	tests := []struct {
		args    []string
		want    []string // NAME-EVR.ARCH key=K requires... per package
		wantErr string
	}{
		{args: []string{"hello-1.1-1 requires=libfoo>=2.0", "libfoo-2.0-1"},
			want: []string{"hello-0:1.1-1.noarch key= requires=[libfoo>=2.0] scripts=0", "libfoo-0:2.0-1.noarch key= requires=[] scripts=0"}},
		{args: []string{"hello-1.1-1", "requires=libfoo>=2.0", "requires=bar", "libfoo-2.0-1"},
			want: []string{"hello-0:1.1-1.noarch key= requires=[libfoo>=2.0 bar] scripts=0", "libfoo-0:2.0-1.noarch key= requires=[] scripts=0"}},
		{args: []string{"kernel-2:6.1-3 arch=x86_64 key=attacker post=fail"},
			want: []string{"kernel-2:6.1-3.x86_64 key=attacker requires=[] scripts=2"}},
		{args: []string{"bad-1-1 pre=fail post=fail key=none"},
			want: []string{"bad-0:1-1.noarch key=none requires=[] scripts=4"}},
		{args: []string{"requires=x hello-1-1"}, wantErr: "before any NAME-VERSION-RELEASE"},
		{args: []string{"hello-1-1 post=ok"}, wantErr: "only post=fail"},
		{args: []string{"hello-1-1 key=../../etc"}, wantErr: "not a key name"},
		{args: []string{"hello-1-1 colour=red"}, wantErr: "unknown key"},
		{args: []string{"hello"}, wantErr: "NAME-VERSION-RELEASE"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "|"), func(t *testing.T) {
			specs, err := parseSpecs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range specs {
				p := s.pkg
				arch := p.Arch
				if arch == "" {
					arch = "noarch"
				}
				got = append(got, fmt.Sprintf("%s-%d:%s-%s.%s key=%s requires=[%s] scripts=%d", p.Name, p.Epoch,
					p.Version, p.Release, arch, s.key, strings.Join(p.Requires, " "), len(p.ExtraHeaderTags)))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}

func TestDomainEnv(t *testing.T) {
	env := domainEnv("dom0", []string{"TERM=xterm", "PATH=/bin"})
	for _, want := range []string{"PATH=/bin", "HOME=/root", "PEDOS_DOMAIN=dom0", "TERM=xterm"} {
		if !slices.Contains(env, want) {
			t.Errorf("environment %q lacks %q", env, want)
		}
	}
	if slices.Contains(env, "PATH="+domainPath) {
		t.Errorf("PATH was not overridden: %q", env)
	}
}
