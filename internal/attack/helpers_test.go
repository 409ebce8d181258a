package attack

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/qfile"
	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/testrepo"
)

// Tests of the suite's own tools, without a lab.

func TestStreamEncodesHeaders(t *testing.T) {
	b := new(Stream).File("a.rpm", []byte("xyz")).End().Bytes()
	le := binary.LittleEndian
	if len(b) != 2*qfile.HeaderSize+len("a.rpm\x00xyz") {
		t.Fatalf("stream of %d bytes", len(b))
	}
	if le.Uint32(b[0:]) != 6 || le.Uint32(b[4:]) != modeRegular || le.Uint64(b[8:]) != 3 {
		t.Errorf("header: namelen %d mode %o filelen %d", le.Uint32(b[0:]), le.Uint32(b[4:]), le.Uint64(b[8:]))
	}
	if got := string(b[qfile.HeaderSize : qfile.HeaderSize+9]); got != "a.rpm\x00xyz" {
		t.Errorf("name and payload: %q", got)
	}
	if !bytes.Equal(b[len(b)-qfile.HeaderSize:], make([]byte, qfile.HeaderSize)) {
		t.Error("no end marker of zeros")
	}
}

// Each P8 surgery must break the header the way its label says, as the
// strict parser sees it.
func TestHeaderMalformations(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	pkg, _, err := buildPackage("hello-1.1-1", s)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range headerMalformations {
		bad, err := withMainHeader(pkg, m.mutate, s)
		if err != nil {
			t.Fatalf("%s: %v", m.label, err)
		}
		_, _, _, _, err = testrepo.Parts(bad)
		if err == nil || !strings.Contains(err.Error(), m.want) {
			t.Errorf("%s: parsing gives %v, want an error saying %q", m.label, err, m.want)
		}
	}
}

func TestSignatureSurgery(t *testing.T) {
	s, err := testrepo.NewSigner(testrepo.KeySpec{})
	if err != nil {
		t.Fatal(err)
	}
	unsigned, _, err := buildPackage("hello-1.1-1")
	if err != nil {
		t.Fatal(err)
	}
	dsa, err := withAlgorithms(unsigned, s, 17, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := s.WritePublicKey(dir); err != nil {
		t.Fatal(err)
	}
	keyring, _, err := rpm.LoadKeyring(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v := &rpm.Verifier{Keyring: keyring, Now: time.Now()}
	if _, err := v.Verify(bytes.NewReader(dsa), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "algorithm 17") {
		t.Errorf("a package whose signature says DSA: %v, want a refusal naming algorithm 17", err)
	}
}

func TestSelected(t *testing.T) {
	for _, c := range []struct {
		id   string
		only []string
		want bool
	}{
		{"S1", nil, true},
		{"S1", []string{"S"}, true},
		{"S12", []string{"S1"}, false},
		{"S12", []string{"s12"}, true},
		{"M3", []string{"S", "P"}, false},
		{"H1", []string{"H"}, true},
	} {
		if got := Selected(c.id, c.only); got != c.want {
			t.Errorf("Selected(%s, %v) = %v", c.id, c.only, got)
		}
	}
}

// TestReportTotalsEveryOutcome: the JSON report counts every outcome, 0
// included, so that a script can read total.FAIL (docs/attacks.md). An
// unknown --only id makes Run return before any lab, with an empty report.
func TestReportTotalsEveryOutcome(t *testing.T) {
	rep, err := Run(context.Background(), Options{Only: []string{"ZZ9"}})
	if err == nil {
		t.Fatal("Run with --only ZZ9: no error")
	}
	rep.add(RowResult{ID: "H1", Outcome: Pass}, nil)
	var out bytes.Buffer
	if err := rep.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var got struct{ Total map[string]int }
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"PASS": 1, "FAIL": 0, "SKIP": 0}; !maps.Equal(got.Total, want) {
		t.Errorf("total %v, want %v", got.Total, want)
	}
}

func TestRowsHaveUniqueIDsAndKnownGroups(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rows() {
		if seen[r.ID] {
			t.Errorf("row %s twice", r.ID)
		}
		seen[r.ID] = true
		if !strings.Contains(strings.Join(groups, " "), r.Group) || r.run == nil || r.Attack == "" {
			t.Errorf("row %s: group %q, attack %q", r.ID, r.Group, r.Attack)
		}
	}
	for _, want := range []string{"S13", "P11", "M9", "C7", "F5"} {
		if !seen[want] {
			t.Errorf("threats.md row %s is missing", want)
		}
	}
}

func TestUnchangedNamesCreatedAndChangedFiles(t *testing.T) {
	dir, file := FileState{Mode: fs.ModeDir}, FileState{SHA256: [32]byte{1}}
	before := Dom0State{Files: map[string]FileState{"etc": dir, "etc/domains.conf": file, "run": dir}}
	after := Dom0State{Files: map[string]FileState{"etc": dir, "etc/domains.conf": {SHA256: [32]byte{2}}, "run": dir, "run/evil": file,
		"var/lib/PedOS/.updates-1": dir}}
	diffs := before.Unchanged(after, "var/lib/PedOS")
	if len(diffs) != 2 || !strings.Contains(diffs[0], "created in dom0 outside the staging directory: /run/evil") ||
		!strings.Contains(diffs[1], "changed in dom0: /etc/domains.conf") {
		t.Errorf("diffs %v, want /run/evil created and /etc/domains.conf changed", diffs)
	}
	if d := before.Unchanged(before); len(d) != 0 {
		t.Errorf("a state differs from itself: %v", d)
	}
}

// A file's mode (setuid too), owner and a link's target are part of what
// dom0's invariants compare, not only its contents (review).
func TestAddFilesSeesModeOwnerAndLinkChanges(t *testing.T) {
	root := t.TempDir()
	key, link := filepath.Join(root, "etc", "key"), filepath.Join(root, "etc", "current")
	if err := os.MkdirAll(filepath.Dir(key), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("key", link); err != nil {
		t.Fatal(err)
	}
	capture := func() Dom0State {
		s := Dom0State{Files: map[string]FileState{}}
		if err := s.addFiles(root, "."); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := capture()
	if d := before.Unchanged(capture()); len(d) != 0 {
		t.Fatalf("a tree differs from itself: %v", d)
	}
	for _, change := range []func() error{
		func() error { return os.Chmod(key, 0o4755) },
		func() error { return os.Chown(key, 1000, 1000) },
		func() error {
			if err := os.Remove(link); err != nil {
				return err
			}
			return os.Symlink("../evil", link)
		},
	} {
		if err := change(); err != nil {
			t.Fatal(err)
		}
		diffs := before.Unchanged(capture())
		if len(diffs) != 1 || !strings.HasPrefix(diffs[0], "files changed in dom0: ") {
			t.Errorf("after a change: %v, want the file named as changed", diffs)
		}
		before = capture()
	}
}
