package dom0

import (
	"strings"
	"testing"
	"time"
)

// The values updates.conf takes, at their edges (docs/operations.md's table of settings):
// what each accepts is read as written, and what it refuses is an error naming the line.
func TestConfigValueEdges(t *testing.T) {
	for _, tc := range []struct {
		line  string
		check func(Config) bool
	}{
		{"max_bytes = 1000", func(c Config) bool { return c.MaxBytes == 1000 }},
		{"max_bytes = 1", func(c Config) bool { return c.MaxBytes == 1 }},
		{"max_bytes = 1K", func(c Config) bool { return c.MaxBytes == 1024 }},
		{"max_bytes = 3000000T", func(c Config) bool { return c.MaxBytes == 3000000<<40 }},
		{"max_files = 1", func(c Config) bool { return c.MaxFiles == 1 }},
		{"receive_timeout = 1d", func(c Config) bool { return c.ReceiveTimeout == 24*time.Hour }},
		{"receive_timeout = 1ns", func(c Config) bool { return c.ReceiveTimeout == time.Nanosecond }},
		{"max_metadata_age = 100000d", func(c Config) bool { return c.MaxMetadataAge == 100000*24*time.Hour }},
		{"releasever = 9.4", func(c Config) bool { return c.ReleaseVer == "9.4" }},
		{"qrexec_client = /usr/lib/qubes/qrexec-client", func(c Config) bool { return c.QrexecClient == "/usr/lib/qubes/qrexec-client" }},
		// Each path setting lands where its row of the table says, and nowhere else: a keyring
		// read as the installroot would trust no key and judge a wrong rpm database.
		{"keyring = /etc/pki/other", func(c Config) bool { return c.KeyringDir == "/etc/pki/other" && c.InstallRoot == "/" }},
		{"installroot = /srv/root", func(c Config) bool { return c.InstallRoot == "/srv/root" && c.KeyringDir == "/etc/pki/rpm-gpg" }},
		// The largest size (ParseSize: "at most 4 EiB"), in the unit it is most easily written in.
		{"max_bytes = 4194304T", func(c Config) bool { return c.MaxBytes == 1<<62 }},
	} {
		c, err := LoadConfig(writeConfig(t, tc.line+"\n"))
		if err != nil || !tc.check(c) {
			t.Errorf("%q: %+v, %v", tc.line, c, err)
		}
	}
	for _, line := range []string{
		"max_bytes = 0", "max_bytes = 1M5", "max_bytes = 4194305T",
		"max_metadata_age = 100001d", "receive_timeout = 0s", "receive_timeout = -5m",
		"qrexec_client = qrexec-client",
		// A key pin is repo.ID.metadata_key, both ends.
		"repo.x = /etc/pki/key", "x.metadata_key = /etc/pki/key",
	} {
		if _, err := LoadConfig(writeConfig(t, line+"\n")); err == nil || !strings.Contains(err.Error(), ":1: ") {
			t.Errorf("%q: %v, want an error at line 1", line, err)
		}
	}
}
