package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Commands on a directory that holds no lab say so, and leave it as it is.
func TestNotALab(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		_, publishErr := Publish(dir, PublishOptions{Specs: []string{"hello-1-1"}})
		_, statusErr := GetStatus(dir)
		_, openErr := Open(dir)
		for _, err := range []error{Down(dir), publishErr, statusErr, openErr} {
			if err == nil || !strings.Contains(err.Error(), "is not a lab directory (no lab.json: pedos-lab up first)") {
				t.Errorf("%s: %v", dir, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, ".lock")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/.lock: %v, want no such file", dir, err)
		}
	}
}

// A mistake in what publish is asked is an ArgumentError, found before the
// lab directory is looked at.
func TestPublishArgumentErrors(t *testing.T) {
	for _, c := range []struct {
		opts PublishOptions
		want string
	}{
		{PublishOptions{}, "nothing to publish"},
		{PublishOptions{Specs: []string{"requires=x"}}, `"requires=x" comes before any NAME-VERSION-RELEASE`},
		{PublishOptions{Specs: []string{"hello-1-1 pre=maybe"}}, "only pre=fail exists"},
		{PublishOptions{Specs: []string{"hello-1-1"}, Snapshot: "Old"}, `--snapshot "Old"`},
		{PublishOptions{Specs: []string{"hello-1-1"}, Key: "../x"}, `--key "../x"`},
		{PublishOptions{Specs: []string{"hello-1-1"}, MetadataKey: "a b"}, `--metadata-key "a b"`},
	} {
		_, err := Publish(filepath.Join(t.TempDir(), "missing"), c.opts)
		if argErr, ok := errors.AsType[*ArgumentError](err); !ok || !strings.Contains(argErr.Error(), c.want) {
			t.Errorf("Publish(%+v): %v, want an ArgumentError saying %q", c.opts, err, c.want)
		}
	}
}

// A name or directory Up cannot use is an ArgumentError that says the
// rule, found before the host or the lab directory is looked at.
func TestUpArgumentErrors(t *testing.T) {
	type upCase struct{ dir, updateVM, want string }
	var cases []upCase
	for _, name := range []string{"../x", "1vm", Dom0, Mirror, AppVM} {
		cases = append(cases, upCase{filepath.Join(t.TempDir(), "missing"), name, "a domain name is a letter, then"})
	}
	// overlayfs would read these as separators in its mount options.
	for _, dir := range []string{"a,b", "a:b", "a b"} {
		cases = append(cases, upCase{filepath.Join(t.TempDir(), dir), "", "must not contain ',', ':'"})
	}
	for _, c := range cases {
		_, err := Up(context.Background(), Options{Dir: c.dir, UpdateVM: c.updateVM})
		if argErr, ok := errors.AsType[*ArgumentError](err); !ok || !strings.Contains(argErr.Error(), c.want) {
			t.Errorf("Up in %s with --updatevm %q: %v, want an ArgumentError saying %q", c.dir, c.updateVM, err, c.want)
		}
		if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it never created", c.dir, err)
		}
	}
}

func TestRunNamesTheLabsDomains(t *testing.T) {
	l := &Lab{Layout: Layout{Dir: t.TempDir()}, State: &State{UpdateVM: "sys-firewall"}}
	_, err := l.Run(context.Background(), "sys-net", Command{Args: []string{"true"}})
	if err == nil || !strings.HasSuffix(err.Error(), `has no domain "sys-net": its domains are mirror, sys-firewall, work, dom0`) {
		t.Errorf("Run in an unknown domain: %v", err)
	}
}
