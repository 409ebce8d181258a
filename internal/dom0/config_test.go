package dom0

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, ConfigPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestLoadConfig(t *testing.T) {
	root := writeConfig(t, `# dom0 update settings
updatevm = sys-net
max_bytes = 2G
max_files = 100
receive_timeout = 10m
installroot = /srv/root
releasever = 41
max_metadata_age = 3d
require_fresh = yes
repo.pedos-dom0-current.metadata_key = /etc/pki/rpm-gpg/RPM-GPG-KEY-pedos
`)
	c, err := LoadConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	if c.UpdateVM != "sys-net" || c.MaxBytes != 2<<30 || c.MaxFiles != 100 ||
		c.ReceiveTimeout != 10*time.Minute || c.InstallRoot != "/srv/root" || c.ReleaseVer != "41" ||
		c.MaxMetadataAge != 72*time.Hour || !c.RequireFresh ||
		c.MetadataKeys["pedos-dom0-current"] != "/etc/pki/rpm-gpg/RPM-GPG-KEY-pedos" {
		t.Errorf("LoadConfig = %+v", c)
	}
	if got := c.InstallRootPath(); got != filepath.Join(root, "/srv/root") {
		t.Errorf("InstallRootPath = %s", got)
	}
}

func TestLoadConfigMissingIsDefault(t *testing.T) {
	root := t.TempDir()
	c, err := LoadConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	if c.UpdateVM != "sys-firewall" || c.MaxBytes != 4<<30 || c.MaxFiles != 4096 || c.RequireFresh {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadConfigErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"updatevm = dom0\n", ":1: updatevm: dom0 cannot be the UpdateVM"},
		{"\nupdatevm = a;b\n", ":2: updatevm"},
		{"max_bytes = lots\n", ":1: max_bytes"},
		{"max_bytes = -1\n", ":1: max_bytes"},
		{"max_files = 0\n", ":1: max_files"},
		{"require_fresh = maybe\n", ":1: require_fresh"},
		{"max_metadata_age = 200000d\n", ":1: max_metadata_age"}, // would overflow time.Duration into a negative age
		{"receive_timeout = 0d\n", ":1: receive_timeout"},
		{"releasever = 1 2\n", ":1: releasever"},
		{"releasever = ../x\n", ":1: releasever"},
		{"releasever = 41..x\n", ":1: releasever"},
		{"frobnicate = 1\n", `unknown setting "frobnicate"`},
		{"repo.x.metadata_key = relative/key\n", "absolute path"},
		{"repo.../x.metadata_key = /k\n", "unknown setting"},
		{"just words\n", ":1: expected key = value"},
		{"updatevm = sys-a\n# later\nupdatevm = sys-b\n", ":3: updatevm is already set on line 1"},
		// Each says what was wrong with the value, in words, and what would do.
		{"max_files = abc\n", `:1: max_files: "abc" is not a positive whole number`},
		{"max_bytes = 99999999999T\n", `:1: max_bytes: "99999999999T" is not a size: a positive number of bytes`},
		{"receive_timeout = forever\n", `:1: receive_timeout: "forever" is not a positive duration such as 90s`},
		{"= sys-a\n", ":1: expected key = value"},
		// Relative, they would be read from wherever the program started.
		{"keyring = etc/keys\n", `:1: keyring: "etc/keys" is not an absolute path`},
		{"installroot = .\n", `:1: installroot: "." is not an absolute path`},
		// A line too long to read: the file and the line, not bufio's words alone.
		{"updatevm = sys-a\n# " + strings.Repeat("x", 70000) + "\n", "updates.conf:2: line of 65536 bytes or more"},
	} {
		_, err := LoadConfig(writeConfig(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadConfig(%q) = %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
}

// An updates.conf that cannot be read (a directory in its place) is an
// error naming it, not the defaults: dom0 would run with another UpdateVM
// and no pinned metadata key than the administrator configured.
// What is no file at updates.conf's path is an error naming it, not the
// defaults: a directory; a FIFO, which would hang every run; a link to a
// missing file (on a file system not mounted), which would drop the pinned
// metadata keys (M7) and require_fresh without a word.
func TestLoadConfigUnreadable(t *testing.T) {
	for what, put := range map[string]func(path string) error{
		"directory":     func(path string) error { return os.Mkdir(path, 0o755) },
		"FIFO":          func(path string) error { return syscall.Mkfifo(path, 0o644) },
		"dangling link": func(path string) error { return os.Symlink("/nonexistent/updates.conf", path) },
	} {
		root := t.TempDir()
		path := filepath.Join(root, ConfigPath)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := put(path); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadConfig(root); err == nil || !strings.Contains(err.Error(), path+": ") {
			t.Errorf("LoadConfig with a %s for updates.conf: %v, want an error naming it", what, err)
		}
	}
}
