package testrepo

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// BuildWithRPMBuild builds p with the real rpmbuild and signs it with
// rpmsign through gpg, for cross-validation against Build. Everything lives
// under workDir (a private HOME and GNUPGHOME); the gpg-agent gpg starts is
// stopped before it returns. signArgs go to rpmsign (e.g. --rpmv3 for a
// header+payload signature as well). It returns the package's path.
func BuildWithRPMBuild(workDir string, p Package, s *Signer, signArgs ...string) (string, error) {
	home, gnupg, top := filepath.Join(workDir, "home"), filepath.Join(workDir, "gnupg"), filepath.Join(workDir, "rpmbuild")
	for _, d := range []string{home, gnupg, filepath.Join(top, "SOURCES")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("testrepo: %w", err)
		}
	}
	defer exec.Command("gpgconf", "--homedir", gnupg, "--kill", "gpg-agent").Run()
	env := []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + home, "GNUPGHOME=" + gnupg}
	run := func(stdin []byte, name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.Env, cmd.Stdin = env, bytes.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("testrepo: %s: %w\n%s", name, err, out)
		}
		return nil
	}

	spec, err := p.writeSpec(filepath.Join(top, "SOURCES"))
	if err != nil {
		return "", err
	}
	specPath := filepath.Join(top, "hello.spec")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		return "", fmt.Errorf("testrepo: %w", err)
	}
	macros := []string{"--define", "_topdir " + top, "--define", "__gpg /usr/bin/gpg", "--define", "_gpg_path " + gnupg,
		"--define", "_gpg_name " + s.Fingerprint(), "--define", "_dbpath " + filepath.Join(workDir, "rpmdb")}
	if err := run(nil, "rpmbuild", append(macros, "--quiet", "-bb", specPath)...); err != nil {
		return "", err
	}
	path := filepath.Join(top, "RPMS", p.arch(), p.FileName())
	if err := run(s.PrivateKeyArmored(), "gpg", "--batch", "--import"); err != nil {
		return "", err
	}
	if err := run(nil, "rpmsign", append(append(macros, signArgs...), "--addsign", path)...); err != nil {
		return "", err
	}
	return path, nil
}

// writeSpec writes p's files into sources and returns a spec that installs them.
func (p Package) writeSpec(sources string) (string, error) {
	var spec strings.Builder
	fmt.Fprintf(&spec, "Name: %s\nVersion: %s\nRelease: %s\nSummary: PedOS test package %s\nLicense: MIT\nBuildArch: %s\n",
		p.Name, p.Version, p.Release, p.Name, p.arch())
	if p.Epoch != 0 {
		fmt.Fprintf(&spec, "Epoch: %d\n", p.Epoch)
	}
	for _, rel := range []struct {
		key    string
		values []string
	}{{"Requires", p.Requires}, {"Provides", p.Provides}, {"Conflicts", p.Conflicts}, {"Obsoletes", p.Obsoletes}} {
		for _, v := range rel.values {
			fmt.Fprintf(&spec, "%s: %s\n", rel.key, v)
		}
	}
	spec.WriteString("%description\nBuilt by internal/testrepo with rpmbuild.\n%install\n")
	files := p.files()
	paths := make([]string, 0, len(files))
	for path := range files {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for i, path := range paths {
		source := filepath.Join(sources, fmt.Sprintf("file%d", i))
		if err := os.WriteFile(source, files[path], 0o644); err != nil {
			return "", fmt.Errorf("testrepo: %w", err)
		}
		fmt.Fprintf(&spec, "install -D -m 0644 %s %%{buildroot}%s\n", source, path)
	}
	spec.WriteString("%files\n" + strings.Join(paths, "\n") + "\n")
	return spec.String(), nil
}
