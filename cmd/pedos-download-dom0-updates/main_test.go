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
