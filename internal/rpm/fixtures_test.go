package rpm_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"pedos.dev/updates/internal/pkgtool"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testbin"
	"pedos.dev/updates/internal/testrepo"
)

// fixture holds keys made once per test binary (RSA generation is slow).
type fixture struct {
	dir                             string // keyring directory
	ed, rsa, untrusted, subkey      *testrepo.Signer
	weak, expired, revoked, unbound *testrepo.Signer
	// Signing subkeys whose binding is made by another primary key, or
	// does not verify (P6).
	boundByAnother, flippedBinding *testrepo.Signer
	keyring                        *rpm.Keyring
	warnings                       []error
	rpmkeys                        *pkgtool.RPMKeys // nil when rpmkeys is not installed
}

var (
	fixtureOnce sync.Once
	shared      *fixture
	fixtureErr  error
)

func TestMain(m *testing.M) {
	code := testbin.Main(m)
	if shared != nil {
		if shared.rpmkeys != nil {
			shared.rpmkeys.Close()
		}
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func keys(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() { shared, fixtureErr = makeFixture() })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return shared
}

func makeFixture() (*fixture, error) {
	dir, err := os.MkdirTemp("", "pedos-rpm-test-keys-")
	if err != nil {
		return nil, err
	}
	f := &fixture{dir: dir}
	long := time.Now().Add(-48 * time.Hour)
	for _, k := range []struct {
		into    **testrepo.Signer
		spec    testrepo.KeySpec
		trusted bool
	}{
		{&f.ed, testrepo.KeySpec{Name: "ed"}, true},
		{&f.rsa, testrepo.KeySpec{Name: "rsa", Algorithm: testrepo.RSA3072}, true},
		{&f.untrusted, testrepo.KeySpec{Name: "untrusted"}, false},
		{&f.subkey, testrepo.KeySpec{Name: "subkey", SigningSubkey: true}, true},
		{&f.weak, testrepo.KeySpec{Name: "weak", Algorithm: testrepo.RSA1024}, true},
		{&f.expired, testrepo.KeySpec{Name: "expired", Created: long, Lifetime: 24 * time.Hour}, true},
		{&f.revoked, testrepo.KeySpec{Name: "revoked", Revoked: true}, true},
		{&f.unbound, testrepo.KeySpec{Name: "unbound", UnboundSubkey: true}, true},
		{&f.boundByAnother, testrepo.KeySpec{Name: "bound by another", BrokenBinding: testrepo.BindingByAnotherKey}, true},
		{&f.flippedBinding, testrepo.KeySpec{Name: "flipped binding", BrokenBinding: testrepo.BindingFlipped}, true},
	} {
		if *k.into, err = testrepo.NewSigner(k.spec); err != nil {
			return f, err
		}
		if k.trusted {
			if _, err := (*k.into).WritePublicKey(dir); err != nil {
				return f, err
			}
		}
	}
	if f.keyring, f.warnings, err = rpm.LoadKeyring(dir, time.Now()); err != nil {
		return f, err
	}
	if _, statErr := os.Stat("/usr/bin/rpmkeys"); statErr == nil {
		// The subkey key is refused by rpm 4.18 (see testrepo's doc): a warning.
		f.rpmkeys, _, err = pkgtool.NewRPMKeys(context.Background(), "", f.keyring.Files())
	}
	return f, err
}

// build makes a package or fails the test.
func build(t testing.TB, spec string, signers ...*testrepo.Signer) []byte {
	t.Helper()
	p, err := testrepo.ParsePackageSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	data, err := testrepo.Build(p, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// verify runs the native verifier and returns the canonical bytes too.
func verify(f *fixture, data []byte) (*rpm.VerifiedPackage, []byte, error) {
	var canonical bytes.Buffer
	pkg, err := (&rpm.Verifier{Keyring: f.keyring}).Verify(bytes.NewReader(data), &canonical)
	return pkg, canonical.Bytes(), err
}

// rpmkeysAccepts writes data to a file and asks the strict rpmkeys.
func rpmkeysAccepts(t *testing.T, f *fixture, data []byte) bool {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.rpm")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return f.rpmkeys.CheckBatch(context.Background(), []string{path})[path] == nil
}
