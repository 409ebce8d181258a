package main

import (
	"errors"
	"testing"

	"pedos.dev/updates/internal/updatevm"
)

// qrexec's failure and refusal of the delivery reach dom0 as 125 and 126.
func TestExitOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("dnf failed"), 1},
		{&updatevm.SendError{Program: "qrexec-client-vm", Code: 126}, 126},
		{&updatevm.SendError{Program: "qrexec-client-vm", Code: 125}, 125},
		{&updatevm.SendError{Program: "qrexec-client-vm", Code: 2}, 1},
	} {
		if got, _ := exitOf(tc.err); got != tc.want {
			t.Errorf("exitOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// Options with a value take it after "=" or as the next word, as the
// usage text shows --root DIR.
func TestParse(t *testing.T) {
	for _, args := range [][]string{
		{"--root", "/lab/vm", "--action", "upgrade", "--session", "ab", "--", "hello"},
		{"--root=/lab/vm", "--action=upgrade", "--session=ab", "hello"},
	} {
		o, err := parse(args)
		if err != nil || o.root != "/lab/vm" || o.req.Action != "upgrade" || o.req.SessionID != "ab" ||
			len(o.req.Packages) != 1 || o.req.Packages[0] != "hello" {
			t.Errorf("parse(%q) = %+v, %v", args, o, err)
		}
	}
	for _, args := range [][]string{{"--sync", "--root"}, {"--sync", "--root="}, {"--action", "--sync"}, {}} {
		if _, err := parse(args); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
}
