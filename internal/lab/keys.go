package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"pedos.dev/updates/internal/testrepo"
)

// DefaultKey is the name of the lab's publisher key: the one dom0 trusts.
// Any other name makes another key, for wrong-key attacks.
const DefaultKey = "publisher"

var keyName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// signer returns the lab key called name, made (ed25519) on first use and
// kept in DIR/keys/NAME.asc; DIR/keys/NAME.pub.asc is its public half. The
// private keys never enter a domain.
func (l *Lab) signer(name string) (*testrepo.Signer, error) {
	if !keyName.MatchString(name) {
		return nil, fmt.Errorf("key name %q: use [a-z0-9_-], at most 32 characters", name)
	}
	private := filepath.Join(l.keysDir(), name+".asc")
	armored, err := os.ReadFile(private)
	if err == nil {
		s, err := testrepo.LoadSigner(armored)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", private, err)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	s, err := testrepo.NewSigner(testrepo.KeySpec{Name: "PedOS lab key " + name})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(l.keysDir(), name+".pub.asc"), s.PublicKeyArmored(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(private, s.PrivateKeyArmored(), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}
