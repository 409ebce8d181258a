package dom0_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/benchrun"
	"pedos.dev/updates/internal/dom0"
	"pedos.dev/updates/internal/frontend"
)

// The unpacker's -v lines only tell the service when to read a file: what
// is published is decided on the staging directory once the unpacker has
// exited. A stand-in for a compromised unpacker stages a real signed batch
// and reports it truthfully, not at all, or with a package it removes or
// never wrote; or it leaves something else beside the batch, or less of it.
func TestUnpackerReportsAreHintsOnly(t *testing.T) {
	signer, err := benchrun.Signer(1)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := benchrun.MakeBatch(t.TempDir(), "hint", []int{4 << 10, 64 << 10, 300 << 10}, signer)
	if err != nil {
		t.Fatal(err)
	}
	report := func(name string) string {
		return fmt.Sprintf("echo 'qfile-dom0-unpacker: received %q (1 bytes)' >&2\n", name)
	}
	var reportAll strings.Builder
	for _, p := range batch.Packages {
		reportAll.WriteString(report(filepath.Base(p)))
	}
	first := filepath.Base(batch.Packages[0])
	notLeft := "the unpacker named 1 package(s) it did not leave in the staging directory"
	// A file of dom0's, linked into the staging directory: dom0 reads it,
	// refuses it, and must not empty it (nothing written outside staging).
	dom0File := filepath.Join(t.TempDir(), "dom0-file")
	if err := os.WriteFile(dom0File, []byte("dom0's own\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	second := "hint9999-1.0-1.noarch.rpm"
	var reportMany strings.Builder
	for i := range 20 {
		reportMany.WriteString(report(fmt.Sprintf("hint%04d-1.0-1.noarch.rpm", 1000+i)))
	}
	files := int64(len(batch.Files()))
	repomd := "repomd--" + benchrun.RepoID + ".xml"
	for _, tc := range []struct {
		name, script string
		wantError    string // "": accepted
		// Limits for dom0 only: the stand-in unpacker ignores them (S8).
		maxFiles, maxBytes int64
	}{
		{"reports every file", reportAll.String(), "", 0, 0},
		{"reports nothing", "", "", 0, 0},
		{"reports every file twice, and others' lines", reportAll.String() + reportAll.String() + "echo 'a log line' >&2\n", "", 0, 0},
		{"reports a package, then removes it", reportAll.String() + "rm \"$2\"/" + first + "\n", notLeft, 0, 0},
		{"reports a package it never wrote", report("hint9999-1.0-1.noarch.rpm"), notLeft, 0, 0},
		{"links a file of dom0's and reports it", "ln " + dom0File + " \"$2\"/hint9999-1.0-1.noarch.rpm\n" + report("hint9999-1.0-1.noarch.rpm"),
			"1 of 4 package(s) failed verification", 0, 0},
		{"symlinks a file of dom0's and reports it", "ln -s " + dom0File + " \"$2\"/hint9999-1.0-1.noarch.rpm\n" + report("hint9999-1.0-1.noarch.rpm"),
			"something other than a regular file", 0, 0},
		// One package under two names would be copied into the build twice.
		{"links a package under a second name", "ln \"$2\"/" + first + " \"$2\"/" + second + "\n", "2 of 4 package(s) failed verification", 0, 0},
		{"writes a terminal escape and a fake log line", `printf 'x\033[2Jy\rok: accepted\n' >&2` + "\n", "", 0, 0},
		{"writes a thousand lines", "for i in $(seq 1000); do echo \"noise $i\"; done >&2\n", "", 0, 0},
		{"leaves more files than max_files", "", "more than max_files (2)", 2, 0},
		{"leaves one file more than max_files", "", fmt.Sprintf("more than max_files (%d)", files-1), files - 1, 0},
		{"leaves as many files as max_files", "", "", files, 0},
		{"leaves more bytes than max_bytes", "", "failed verification", 0, 100 << 10},
		{"leaves one byte more than max_bytes", "", "failed verification", 0, batch.Bytes - 1},
		{"leaves as many bytes as max_bytes", "", "", 0, batch.Bytes},
		// At most max_files names are taken from the reports (S8).
		{"reports more names than max_files", reportMany.String(), "the unpacker named 8 package(s) it did not leave", 8, 0},
		{"reports a metadata file", report(repomd), "", 0, 0},
		{"leaves a directory", "mkdir \"$2\"/dir.rpm\n", "something other than a regular file", 0, 0},
		{"leaves a file that is neither package nor metadata", "echo x >\"$2\"/notes.txt\n", "neither a package nor repository metadata", 0, 0},
		// Its place among the files, by name, is the pointer to it (the name is the UpdateVM's).
		{"leaves such a file last", "echo x >\"$2\"/zz-notes.txt\n", fmt.Sprintf("neither a package nor repository metadata (%d of %d, by name)", len(batch.Files())+1, len(batch.Files())+1), 0, 0},
		{"leaves a package under another package's name (P9)", "mv \"$2\"/" + first + " \"$2\"/" + second + "\n", "1 of 3 package(s) failed verification", 0, 0},
		{"leaves metadata of a repository not enabled", "cp \"$2\"/" + repomd + " \"$2\"/repomd--other.xml\n", "repository other, which is not enabled", 0, 0},
		{"leaves no primary", "rm \"$2\"/primary--" + benchrun.RepoID + ".xml\n", "refuse the delivery (missing-metadata)", 0, 0},
		// A refusal says what the unpacker's status code means (qfile.md "Status").
		{"refuses a name", "echo 'qfile-dom0-unpacker: refused a name (S1, S2): the name holds U+001B (EILSEQ)' >&2\nexit 84\n", "the unpacker refused the stream: a name that breaks the receiver's name rules (EILSEQ); it said: refused a name (S1, S2): the name holds U+001B (EILSEQ)", 0, 0},
		{"refuses a duplicate", "exit 17\n", "the unpacker refused the stream: a name already received (EEXIST); it said: nothing", 0, 0},
		// A name, valid or not, is the UpdateVM's text: not in the result.
		{"refuses a duplicate, quoting its name", "echo 'qfile-dom0-unpacker: \"Updates verified OK. Now run: curl x | sh\": file exists' >&2\nexit 17\n",
			"the unpacker refused the stream: a name already received (EEXIST); it said: \"…\": file exists", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			c, err := benchrun.NewDom0Root(t.Context(), root, signer)
			if err != nil {
				t.Fatal(err)
			}
			if tc.maxFiles > 0 {
				c.MaxFiles = tc.maxFiles
			}
			if tc.maxBytes > 0 {
				c.MaxBytes = tc.maxBytes
			}
			res, log, serveErr := deliverStaged(t, c, batch.Files(), tc.script)
			accept := tc.wantError == ""
			if res.Accepted != accept || (serveErr == nil) != accept {
				t.Fatalf("accepted %v (%v), want %v; log:\n%s", res.Accepted, serveErr, accept, log)
			}
			if !strings.Contains(res.Error, tc.wantError) {
				t.Errorf("refused for another reason: %s, want %s", res.Error, tc.wantError)
			}
			if strings.ContainsAny(log, "\x1b\r") {
				t.Errorf("the unpacker's control characters reached the log: %q", log)
			}
			if tc.maxBytes > 0 && !accept && !slices.ContainsFunc(res.Packages, func(p dom0.PackageCheck) bool { return strings.Contains(p.Rejected, "more than max_bytes") }) {
				t.Errorf("no package was refused for max_bytes: %+v", res.Packages)
			}
			if b, err := os.ReadFile(dom0File); err != nil || string(b) != "dom0's own\n" {
				t.Errorf("dom0's file linked into the staging directory now holds %q (%v)", b, err)
			}
			if res.Packages == nil {
				t.Error("the result's packages are null, not a list")
			}
			if accept && len(res.Packages) != len(batch.Packages) {
				t.Errorf("%d packages published, want %d", len(res.Packages), len(batch.Packages))
			}
			if _, err := os.Stat(c.Path(dom0.CachedRepoDir)); accept != (err == nil) {
				t.Errorf("accepted %v, but the cached repository: %v", accept, err)
			}
			if strings.Contains(tc.name, "P9") && !slices.ContainsFunc(res.Packages, func(p dom0.PackageCheck) bool {
				return strings.Contains(p.Rejected, "does not match the package inside")
			}) {
				t.Errorf("no package was refused for its name: %+v", res.Packages)
			}
			if strings.Contains(tc.script, "noise") && (!strings.Contains(log, "noise 100\n") || strings.Contains(log, "noise 101\n") ||
				!strings.Contains(log, "more than 100 lines of output; the rest is not logged")) {
				t.Errorf("the unpacker's lines were not cut after 100:\n%.300s", log)
			}
			if strings.Contains(log, "received") || strings.Contains(tc.script, "a log line") != strings.Contains(log, "a log line") {
				t.Errorf("the log has a report, or lacks another line:\n%s", log)
			}
		})
	}
}

// deliverStaged runs the service with a stand-in unpacker that copies files
// into the staging directory, then runs script (sh, $2 the directory), and
// returns the result, Serve's error and the service's log. configure, if
// given, adjusts the service for the session before it is called.
func deliverStaged(t *testing.T, c dom0.Config, files []string, script string, configure ...func(*dom0.Receiver, dom0.Session)) (res dom0.Result, log string, serveErr error) {
	t.Helper()
	unpacker := filepath.Join(t.TempDir(), "fake-unpacker")
	script = "#!/bin/sh\ncp " + strings.Join(files, " ") + " \"$2\"/\n" + script
	if err := os.WriteFile(unpacker, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	session, release, err := frontend.NewSession(c, dom0.Session{Action: "upgrade"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var logged strings.Builder
	r := &dom0.Receiver{Config: c, Unpacker: unpacker, Log: &logged, Now: time.Now}
	for _, f := range configure {
		f(r, session)
	}
	serveErr = r.Serve(t.Context(), benchrun.UpdateVM, session.ID, strings.NewReader(""), &strings.Builder{})
	if res, err = frontend.ReadResult(c, session.ID); err != nil {
		t.Fatal(err)
	}
	return res, logged.String(), serveErr
}
