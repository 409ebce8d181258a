// Package testrepo builds signed RPM packages for tests, benchmarks and the
// lab, fast and without external tools: keys come from go-crypto, packages
// from github.com/google/rpmpack, and the signature header is written as
// rpmsign writes it (header signature in RSAHEADER for RSA keys, DSAHEADER
// for EdDSA; header SHA-1 and SHA-256; MD5 and size of header+payload).
// It is test-only code and is never linked into dom0.
//
// Typical use:
//
//	signer, _ := testrepo.NewSigner(testrepo.KeySpec{})          // ed25519
//	keyFile, _ := signer.WritePublicKey(keyringDir)               // RPM-GPG-KEY-<FPR>
//	p, _ := testrepo.ParsePackageSpec("hello-1.1-1 requires=libfoo>=2.0")
//	path, _ := testrepo.WriteFile(stagingDir, p, signer)          // hello-1.1-1.noarch.rpm
//
// Negative cases: KeySpec{Algorithm: RSA1024}, {Lifetime: …} with an old
// Created, {Revoked: true}, {UnboundSubkey: true},
// {BrokenBinding: BindingByAnotherKey or BindingFlipped}; Signer.Hash = crypto.SHA1;
// Signer.SignatureLifetime; Package.ExtraHeaderTags for tags in the signed
// main header; Parts and Assemble to take a package apart and re-sign or
// re-assemble it after byte surgery. BuildWithRPMBuild makes the same
// package with rpmbuild and rpmsign (gpg) for cross-validation.
//
// Limitation found with rpm 4.18: go-crypto marks the embedded
// back-signature of a signing subkey critical, which rpm 4.18 cannot import
// ("key 1 import failed"); packages signed by a go-crypto subkey are
// therefore checked natively only (keys made by gpg do not have this issue).
package testrepo
