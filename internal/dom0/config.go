// Package dom0 is dom0's side of the update: its configuration, the session
// that binds a delivery to an update dom0 started, the receive pipeline behind
// the PedOS.ReceiveUpdates service, and the atomic publication of the cached
// repository. Nothing here parses the update stream itself (internal/qfile),
// RPM bytes (internal/rpm) or repository metadata (internal/repometa).
package dom0

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"pedos.dev/updates/internal/atomicfile"
	"pedos.dev/updates/internal/repometa"
)

// Config is dom0's /etc/pedos/updates.conf. It is trusted: only dom0's
// administrator writes it.
type Config struct {
	// Root prefixes every dom0 path ("" or "/" on a real host, the domain's
	// tree in the lab).
	Root string
	// UpdateVM is the only domain allowed to call PedOS.ReceiveUpdates (C1).
	UpdateVM string
	// UnpackerUser is the user qfile-dom0-unpacker drops to (name or uid).
	UnpackerUser string
	// MaxBytes and MaxFiles bound one delivery (S8).
	MaxBytes int64
	MaxFiles int64
	// ReceiveTimeout ends a stalled delivery (S11, C7).
	ReceiveTimeout time.Duration
	// KeyringDir holds the armored public keys trusted for packages.
	KeyringDir string
	// InstallRoot is the root dnf installs into ("/" on a real host).
	InstallRoot string
	// ReleaseVer is passed to dnf as --releasever when set.
	ReleaseVer string
	// QrexecClient is the program dom0 runs commands in the UpdateVM with:
	// "" is ours, installed next to pedos-dom0-update; a PedOS/Qubes host
	// names its own (docs/deploy-qubes.md).
	QrexecClient string
	// MaxMetadataAge is how old signed metadata may be before it is a freeze
	// finding (verify.md §2 step 4); RequireFresh makes that an error.
	MaxMetadataAge time.Duration
	RequireFresh   bool
	// MetadataKeys pins, per repository id, the key file that must sign its
	// repomd.xml (verify.md §2 step 1, M7). A pinned repository must deliver
	// signed metadata; the others are "freshness not verifiable".
	MetadataKeys map[string]string
}

// ConfigPath is where dom0's configuration lives, below the root.
const ConfigPath = "/etc/pedos/updates.conf"

// DefaultConfig is what an empty updates.conf means.
func DefaultConfig(root string) Config {
	return Config{
		Root:           root,
		UpdateVM:       "sys-firewall",
		UnpackerUser:   "nobody",
		MaxBytes:       4 << 30,
		MaxFiles:       4096,
		ReceiveTimeout: time.Hour,
		KeyringDir:     "/etc/pki/rpm-gpg",
		InstallRoot:    "/",
		MaxMetadataAge: repometa.DefaultMaxMetadataAge,
		MetadataKeys:   map[string]string{},
	}
}

// InstallRootPath is the installroot as seen from this process.
func (c Config) InstallRootPath() string { return c.Path(c.InstallRoot) }

// Path returns the dom0 path p (absolute, as on a real host) below Root.
func (c Config) Path(p string) string { return filepath.Join(c.Root, p) }

var (
	domainName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,30}$`)
	// dnf puts $releasever into repository URLs and paths: one word, no "..".
	releaseVer = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// CheckReleaseVer accepts a value for dnf's $releasever, which dnf puts
// into repository URLs and paths.
func CheckReleaseVer(value string) error {
	if !releaseVer.MatchString(value) || strings.Contains(value, "..") {
		return fmt.Errorf("%q is not a release version (letters, digits, '.', '_', '-')", value)
	}
	return nil
}

// LoadConfig reads updates.conf below root. A missing file means the
// defaults; a malformed one is an error naming the line.
func LoadConfig(root string) (Config, error) {
	c := DefaultConfig(root)
	path := c.Path(ConfigPath)
	f, err := atomicfile.OpenRegular(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	// A setting given twice is an error, not "the last one wins": an
	// administrator who pins a key or names the UpdateVM must not find the
	// file means something else than the line they read.
	setOn := map[string]int{}
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(key) == "" {
			return c, fmt.Errorf("%s:%d: expected key = value", path, n)
		}
		key = strings.TrimSpace(key)
		if first, dup := setOn[key]; dup {
			return c, fmt.Errorf("%s:%d: %s is already set on line %d", path, n, key, first)
		}
		setOn[key] = n
		if err := c.set(key, strings.TrimSpace(value)); err != nil {
			return c, fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return c, fmt.Errorf("%s:%d: line of %d bytes or more", path, n+1, bufio.MaxScanTokenSize)
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c *Config) set(key, value string) error {
	var err error
	switch key {
	case "updatevm":
		if value == "dom0" {
			return errors.New("updatevm: dom0 cannot be the UpdateVM: it never touches a network")
		}
		if !domainName.MatchString(value) {
			return fmt.Errorf("updatevm: %q is not a domain name", value)
		}
		c.UpdateVM = value
	case "unpacker_user":
		c.UnpackerUser = value
	case "max_bytes":
		c.MaxBytes, err = ParseSize(value)
	case "max_files":
		if c.MaxFiles, err = strconv.ParseInt(value, 10, 64); err != nil || c.MaxFiles <= 0 {
			err = fmt.Errorf("%q is not a positive whole number", value)
		}
	case "receive_timeout":
		c.ReceiveTimeout, err = parseDuration(value)
	case "keyring", "installroot":
		// Relative, they would be read from wherever the program started.
		if !filepath.IsAbs(value) {
			return fmt.Errorf("%s: %q is not an absolute path", key, value)
		}
		if key == "keyring" {
			c.KeyringDir = value
		} else {
			c.InstallRoot = value
		}
	case "releasever":
		if err := CheckReleaseVer(value); err != nil {
			return fmt.Errorf("releasever: %w", err)
		}
		c.ReleaseVer = value
	case "qrexec_client":
		if !filepath.IsAbs(value) {
			return errors.New("qrexec_client must be an absolute path")
		}
		c.QrexecClient = value
	case "max_metadata_age":
		c.MaxMetadataAge, err = parseDuration(value)
	case "require_fresh":
		c.RequireFresh, err = parseBool(value)
	default:
		id, ok := strings.CutPrefix(key, "repo.")
		id, ok2 := strings.CutSuffix(id, ".metadata_key")
		if !ok || !ok2 || !repometa.RepoIDPattern.MatchString(id) {
			return fmt.Errorf("unknown setting %q", key)
		}
		if !filepath.IsAbs(value) {
			return fmt.Errorf("%s: key file must be an absolute path", key)
		}
		c.MetadataKeys[id] = value
	}
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// ParseSize reads a byte count with an optional K, M, G or T suffix (powers
// of 1024).
func ParseSize(s string) (int64, error) {
	original, mult := s, int64(1)
	if i := strings.IndexAny(s, "KMGT"); i >= 0 && i == len(s)-1 {
		mult = 1 << (10 * (strings.IndexByte("KMGT", s[i]) + 1))
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size: a positive number of bytes, or of KiB, MiB, GiB or TiB with K, M, G or T after it, at most 4 EiB", original)
	}
	return n * mult, nil
}

// parseDuration accepts Go durations and a plain number of days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 100_000 { // time.Duration holds at most 292 years
			return 0, fmt.Errorf("%q is not a number of days from 1 to 100000", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as 90s, 30m, 2h or 7d", s)
	}
	return d, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes", "true", "1", "on":
		return true, nil
	case "no", "false", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not yes or no", s)
}
