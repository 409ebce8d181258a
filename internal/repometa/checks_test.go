package repometa

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/rpmver"
)

// TestCheckMembership uses two real snapshots of one repository: the
// current one and an older one whose packages are validly signed too.
func TestCheckMembership(t *testing.T) {
	older := buildSnapshot(t, day0.Add(-72*time.Hour), "foo-1.0-2.noarch", "foo-1.0-3.noarch", "bar-2.0-1.x86_64", "evil-1.0-1.noarch")
	current := buildSnapshot(t, day0, "foo-1.1-1.noarch", "bar-2.1-1.x86_64", "baz-3.0-1.x86_64")
	unsigned := buildSnapshot(t, day0, "foo-1.2-1.noarch")
	pub := newPublisher(t, nil)
	s := loadState(t, t.TempDir(), day0)
	repo, findings := s.VerifyRepomd(current.signedBy(t, "updates", pub, pub.pinned, day0), current.received(t, "foo-1.1-1.noarch", "bar-2.1-1.x86_64", "baz-3.0-1.x86_64"))
	if repo == nil {
		t.Fatal(findings)
	}
	mislabelled := current.received(t, "foo-1.1-1.noarch")[0]
	mislabelled.NEVRA = nevra(t, "bar-2.1-1.x86_64")
	resized := current.received(t, "foo-1.1-1.noarch")[0]
	resized.Size++
	rebuilt := current.received(t, "foo-1.1-1.noarch")[0] // same NEVRA as listed, another file
	rebuilt.SHA256[0] ^= 1
	for _, c := range []struct {
		name         string
		received     []ReceivedPackage
		unverifiable []RepoFiles
		want         []string
	}{
		{"all listed", current.received(t, "foo-1.1-1.noarch", "bar-2.1-1.x86_64"), nil, nil},
		{"M4: replay of an older signed build", older.received(t, "foo-1.0-3.noarch"), nil,
			[]string{"rejected not-in-metadata foo-1.0-3.noarch.rpm"}},
		{"M5: mix of two snapshots", append(current.received(t, "foo-1.1-1.noarch"), older.received(t, "bar-2.0-1.x86_64")...), nil,
			[]string{"rejected not-in-metadata bar-2.0-1.x86_64.rpm"}},
		{"M6: extraneous package", append(current.received(t, "baz-3.0-1.x86_64"), older.received(t, "evil-1.0-1.noarch")...), nil,
			[]string{"rejected extraneous evil-1.0-1.noarch.rpm"}},
		{"wrong software: listed digest, other header", []ReceivedPackage{mislabelled}, nil,
			[]string{"rejected wrong-software foo-1.1-1.noarch.rpm"}},
		{"wrong software: listed digest, other size", []ReceivedPackage{resized}, nil,
			[]string{"rejected wrong-software foo-1.1-1.noarch.rpm"}},
		// Not newer than the listed build, so it cannot be from the unverifiable repository alone.
		{"same version as listed, another file, a repo is not verifiable", []ReceivedPackage{rebuilt}, []RepoFiles{{ID: "testing"}},
			[]string{"rejected not-in-metadata foo-1.1-1.noarch.rpm"}},
		{"unlisted but a repo is not verifiable", older.received(t, "evil-1.0-1.noarch"), []RepoFiles{{ID: "thirdparty"}},
			[]string{"notice not-verifiable evil-1.0-1.noarch.rpm"}},
		// A build newer than every listed one can only come from the
		// repository that is not verifiable; an older one is still a replay.
		{"newer than listed, a repo is not verifiable", unsigned.received(t, "foo-1.2-1.noarch"), []RepoFiles{{ID: "testing"}},
			[]string{"notice not-verifiable foo-1.2-1.noarch.rpm"}},
		{"M4 with a repo that is not verifiable", older.received(t, "foo-1.0-3.noarch"), []RepoFiles{{ID: "testing"}},
			[]string{"rejected not-in-metadata foo-1.0-3.noarch.rpm"}},
		{"newer than listed, every repo verifiable", unsigned.received(t, "foo-1.2-1.noarch"), nil,
			[]string{"rejected not-in-metadata foo-1.2-1.noarch.rpm"}},
	} {
		if got := kinds(s.CheckMembership([]*VerifiedRepo{repo}, c.unverifiable, nil, c.received, Request{Action: "upgrade"})); !slices.Equal(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
	}
	// The same build listed with other bytes: the message names the digest,
	// not the build it then says is listed.
	f := s.CheckMembership([]*VerifiedRepo{repo}, nil, nil, []ReceivedPackage{rebuilt}, Request{Action: "upgrade"})
	if want := "foo-1.1-1.noarch.rpm: its SHA-256 is not in the current signed metadata (as excludepkgs and includepkgs leave it), which lists foo-1.1-1.noarch"; len(f) != 1 || !strings.HasPrefix(f[0].Detail, want) {
		t.Errorf("a rebuilt listed build: %v, want %q", f, want)
	}
}

// A repository's own excludepkgs and includepkgs decide what it offers: a
// build they leave out counts as listed nowhere, whoever else lists the
// name (dnf would never take it from there), and is not the newest build
// either. The same holds for a repository without signed metadata.
func TestCheckMembershipRepoLists(t *testing.T) {
	updates := verified(t, "updates", day0, 1, "openssl-3.0-2.x86_64", "foo-4.0-1.noarch")
	updates.Exclude = []string{"foo*"}
	vendor := verified(t, "vendor", day0, 1, "openssl-9.9-1.x86_64", "vendor-tool-1.0-1.noarch", "foo-3.0-1.noarch")
	vendor.Include = []string{"vendor-*", "foo"}
	for i := range vendor.Packages {
		vendor.Packages[i].SHA256[1] = 2 // not updates' digests
	}
	s := loadState(t, t.TempDir(), day0)
	pkg := func(r *VerifiedRepo, i int) []ReceivedPackage {
		return []ReceivedPackage{{File: r.Packages[i].NEVRA.String() + ".rpm", Package: r.Packages[i]}}
	}
	for _, c := range []struct {
		name         string
		received     []ReceivedPackage
		unverifiable []RepoFiles
		want         []string
	}{
		{"a build the repository's includepkgs leave out", pkg(vendor, 0), nil, []string{"rejected not-in-metadata openssl-9.9-1.x86_64.rpm"}},
		{"a build the repository offers", pkg(vendor, 1), nil, nil},
		{"another repository's excluded build is not the newest", pkg(vendor, 2), nil, nil},
		{"a build the repository's excludepkgs leave out", pkg(updates, 1), nil, []string{"rejected not-in-metadata foo-4.0-1.noarch.rpm"}},
		{"no signed metadata, and its includepkgs leave it out", pkg(vendor, 0), []RepoFiles{{ID: "testing", Include: []string{"testing-*"}}},
			[]string{"rejected not-in-metadata openssl-9.9-1.x86_64.rpm"}},
		{"no signed metadata, and it may offer it", pkg(vendor, 0), []RepoFiles{{ID: "testing"}}, []string{"notice not-verifiable openssl-9.9-1.x86_64.rpm"}},
	} {
		if got := kinds(s.CheckMembership([]*VerifiedRepo{updates, vendor}, c.unverifiable, nil, c.received, Request{Action: "upgrade"})); !slices.Equal(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
	}
}

// Repository priorities, as dnf 4.14 picks (measured): of the builds at
// least as new as the installed one, the best priority's newest. With hi
// (priority 1) offering hello 1.2 and lo (99) 1.5, an honest upgrade
// brings 1.2: neither a replay nor a withheld 1.5; held back, 1.2 is
// withheld. hi offering only the installed 1.1 leaves nothing to do; hi
// offering only an older 1.0 does not count, and 1.5 is the update. lo's
// 1.5 delivered while hi offers 1.2 is what dnf takes only for a
// dependency that needs it: a notice. A version the user names narrows
// the choice first: hello-1.5 named, 1.5 is due wherever it is listed.
func TestPriorities(t *testing.T) {
	// Other installed packages (sorting before and after hello) are no
	// installed build of hello.
	installed := []NEVRA{nevra(t, "aaa-9.0-1.noarch"), nevra(t, "hello-1.1-1.noarch"), nevra(t, "zlib-9.0-1.noarch")}
	repos := func(hi ...string) []*VerifiedRepo {
		h := verified(t, "hi", day0, 1, hi...)
		h.Priority = 1
		l := verified(t, "lo", day0, 1, "hello-1.5-1.noarch", "hello-1.4-1.noarch")
		l.Priority = 99
		for i := range l.Packages {
			l.Packages[i].SHA256[1] = 2 // not hi's digests
		}
		return []*VerifiedRepo{h, l}
	}
	listed := func(r *VerifiedRepo, i int) []ReceivedPackage {
		return []ReceivedPackage{{File: r.Packages[i].NEVRA.String() + ".rpm", Package: r.Packages[i]}}
	}
	s := loadState(t, t.TempDir(), day0)
	upgrade := Request{Action: "upgrade"}
	for _, c := range []struct {
		name     string
		repos    []*VerifiedRepo
		received func([]*VerifiedRepo) []ReceivedPackage
		req      Request
		want     []string
	}{
		{"the better priority's update", repos("hello-1.2-1.noarch"), func(r []*VerifiedRepo) []ReceivedPackage { return listed(r[0], 0) }, upgrade, nil},
		{"nothing delivered", repos("hello-1.2-1.noarch"), func([]*VerifiedRepo) []ReceivedPackage { return nil }, upgrade, []string{"rejected withheld hello-1.2-1.noarch"}},
		{"the installed version offered first", repos("hello-1.1-1.noarch"), func([]*VerifiedRepo) []ReceivedPackage { return nil }, upgrade, nil},
		{"only an older version offered first", repos("hello-1.0-1.noarch"), func([]*VerifiedRepo) []ReceivedPackage { return nil }, upgrade, []string{"rejected withheld hello-1.5-1.noarch"}},
		{"the worse priority's older build", repos("hello-1.0-1.noarch"), func(r []*VerifiedRepo) []ReceivedPackage { return listed(r[1], 1) }, upgrade,
			[]string{"rejected older-build hello-1.4-1.noarch.rpm", "rejected withheld hello-1.5-1.noarch"}},
		{"the worse priority's update", repos("hello-1.2-1.noarch"), func(r []*VerifiedRepo) []ReceivedPackage { return listed(r[1], 0) }, upgrade,
			[]string{"notice priority hello-1.5-1.noarch.rpm"}},
		{"the worse priority's update, the installed version offered first", repos("hello-1.1-1.noarch"), func(r []*VerifiedRepo) []ReceivedPackage { return listed(r[1], 0) }, upgrade,
			[]string{"notice priority hello-1.5-1.noarch.rpm"}},
		// A version the user names is taken from whichever repository has it.
		{"hello-1.5 named, the better priority's 1.2 delivered", repos("hello-1.2-1.noarch"), func(r []*VerifiedRepo) []ReceivedPackage { return listed(r[0], 0) },
			Request{Action: "install", Packages: []string{"hello-1.5"}}, []string{"rejected older-build hello-1.2-1.noarch.rpm"}},
		{"hello-1.5 named and delivered", repos("hello-1.2-1.noarch"), func(r []*VerifiedRepo) []ReceivedPackage { return listed(r[1], 0) },
			Request{Action: "upgrade", Packages: []string{"hello-1.5"}}, nil},
		// Then priorities choose among the named builds: hi's release of 1.4.
		{"hello-1.4 named, the better priority's release delivered", repos("hello-1.4-0.noarch"), func(r []*VerifiedRepo) []ReceivedPackage { return listed(r[0], 0) },
			Request{Action: "upgrade", Packages: []string{"hello-1.4"}}, nil},
		{"hello-1.5 named, 1.4 delivered", repos("hello-1.2-1.noarch"), func(r []*VerifiedRepo) []ReceivedPackage { return listed(r[1], 1) },
			Request{Action: "upgrade", Packages: []string{"hello-1.5"}}, []string{"rejected older-build hello-1.4-1.noarch.rpm", "rejected withheld hello-1.5-1.noarch"}},
	} {
		received := c.received(c.repos)
		findings := append(s.CheckMembership(c.repos, nil, installed, received, c.req), s.CheckWithholding(c.repos, nil, installed, received, c.req)...)
		// A better-priority repository without signed metadata may have
		// offered what dnf took: the refusal says so, and how to check it.
		for _, f := range s.CheckWithholding(c.repos, []RepoFiles{{ID: "unsigned", Priority: 0}}, installed, received, c.req) {
			if !strings.Contains(f.Detail, "or dnf took hello from repo unsigned, of a better priority and without signed metadata to check (pin its metadata key") {
				t.Errorf("%s, with a better-priority repository unsigned: %s", c.name, f.Detail)
			}
		}
		if got := kinds(findings); !slices.Equal(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
		for _, f := range findings {
			if f.Kind == OtherPriority && !strings.Contains(f.Detail, map[bool]string{true: "dnf keeps the installed hello-1.1-1.noarch, offered by repo hi (priority 1) before this build (priority 99)", false: "dnf takes hello-1.2-1.noarch from repo hi (priority 1)"}[strings.Contains(c.name, "installed version")]) {
				t.Errorf("%s: %s", c.name, f.Detail)
			}
			// The report names the repository dnf would take it from.
			if f.Kind == OtherPriority && f.Repo != "hi" {
				t.Errorf("%s: the notice names repo %q, want hi", c.name, f.Repo)
			}
		}
	}
}

// A build the user did not name (a dependency) is judged against every
// listed build, not only the named ones (review: an older hello.x86_64 beside
// a named hello-1.5-1.i686, and kernel-6.2 beside a named kernel-6.1, both
// with newer builds listed, were accepted: dnf 4.14 installs such an older
// build only if the UpdateVM withholds the newer one).
func TestUnnamedBuildBesideNamedOnes(t *testing.T) {
	s := loadState(t, t.TempDir(), day0)
	for _, c := range []struct {
		listed   []string
		received []int
		named    []string
		want     []string
	}{
		{[]string{"hello-1.0-1.x86_64", "hello-1.2-1.x86_64", "hello-1.5-1.i686", "world-1.0-1.x86_64"}, []int{0, 2, 3},
			[]string{"hello-1.5-1.i686", "world"}, []string{"rejected older-build hello-1.0-1.x86_64.rpm"}},
		{[]string{"kernel-6.1-1.x86_64", "kernel-6.2-1.x86_64", "kernel-6.5-1.x86_64"}, []int{1},
			[]string{"kernel-6.1"}, []string{"rejected older-build kernel-6.2-1.x86_64.rpm"}},
	} {
		r := verified(t, "updates", day0, 1, c.listed...)
		var received []ReceivedPackage
		for _, i := range c.received {
			received = append(received, ReceivedPackage{File: r.Packages[i].NEVRA.String() + ".rpm", Package: r.Packages[i]})
		}
		if got := kinds(s.CheckMembership([]*VerifiedRepo{r}, nil, nil, received, Request{Action: "install", Packages: c.named})); !slices.Equal(got, c.want) {
			t.Errorf("install %q: findings %q, want %q", c.named, got, c.want)
		}
	}
}

// A priority of -2147483648, ranked last as 2147483648 (dnfconf), is shown
// as the .repo file writes it.
func TestPriorityAsWritten(t *testing.T) {
	if asWritten(math.MaxInt32+1) != math.MinInt32 || asWritten(99) != 99 || asWritten(-5) != -5 {
		t.Errorf("asWritten: %d, %d, %d", asWritten(math.MaxInt32+1), asWritten(99), asWritten(-5))
	}
}

// A renamed package in a better-priority repository replaces the installed
// one even where its Obsoletes stop below the other repository's newer
// build: dnf prunes its candidates, the obsoleting one among them, by
// priority first (measured with dnf 4.14; a review). At the same priority
// the newer build is due, and its absence is withheld.
func TestReplacementFromABetterPriority(t *testing.T) {
	installed := []NEVRA{nevra(t, "hello-1.1-1.noarch")}
	for _, c := range []struct {
		hiPriority int
		want       []string
	}{{1, []string{"notice replaced newhello-2.0-1.noarch.rpm"}}, {99, []string{"rejected withheld hello-1.2-1.noarch"}}} {
		hi := verified(t, "hi", day0, 1, "newhello-2.0-1.noarch")
		hi.Priority = c.hiPriority
		lo := verified(t, "lo", day0, 1, "hello-1.2-1.noarch")
		lo.Priority = 99
		lo.Packages[0].SHA256[1] = 2 // not hi's digest
		received := []ReceivedPackage{obsoleting(t, "newhello-2.0-1.noarch", hi.Packages[0].SHA256, "hello", rpmver.SenseLess, "1.2")}
		s := loadState(t, t.TempDir(), day0)
		if got := kinds(s.CheckWithholding([]*VerifiedRepo{hi, lo}, nil, installed, received, Request{Action: "upgrade"})); !slices.Equal(got, c.want) {
			t.Errorf("newhello at priority %d: findings %q, want %q", c.hiPriority, got, c.want)
		}
	}
}

// A package named by its arch (hello.x86_64) is judged among that arch's
// builds, as dnf chooses: the x86_64 build is no replay of a newer noarch
// one (a review, measured with dnf 4.14), but an older x86_64 build is;
// and a noarch build delivered for it does not meet the x86_64 update due.
func TestNamedByArch(t *testing.T) {
	s := loadState(t, t.TempDir(), day0)
	r := verified(t, "updates", day0, 1, "hello-1.0-1.noarch", "hello-1.2-1.x86_64", "hello-1.5-1.noarch", "hello-1.1-1.x86_64")
	for i, want := range map[int][]string{1: nil, 3: {"rejected older-build hello-1.1-1.x86_64.rpm"}} {
		received := []ReceivedPackage{{File: r.Packages[i].NEVRA.String() + ".rpm", Package: r.Packages[i]}}
		if got := kinds(s.CheckMembership([]*VerifiedRepo{r}, nil, nil, received, Request{Action: "upgrade", Packages: []string{"hello.x86_64"}})); !slices.Equal(got, want) {
			t.Errorf("upgrade hello.x86_64, %s delivered: findings %q, want %q", r.Packages[i].NEVRA, got, want)
		}
	}
	updates := verified(t, "updates", day0, 1, "hello-1.5-1.x86_64", "hello-1.5-1.noarch")
	installed := []NEVRA{nevra(t, "hello-1.1-1.x86_64")}
	noarch := []ReceivedPackage{{File: "hello-1.5-1.noarch.rpm", Package: updates.Packages[1]}}
	want := []string{"rejected withheld hello-1.5-1.x86_64"}
	if got := kinds(s.CheckWithholding([]*VerifiedRepo{updates}, nil, installed, noarch, Request{Action: "upgrade", Packages: []string{"hello.x86_64"}})); !slices.Equal(got, want) {
		t.Errorf("upgrade hello.x86_64, the noarch build delivered: findings %q, want %q", got, want)
	}
	if got := kinds(s.CheckWithholding([]*VerifiedRepo{updates}, nil, installed, noarch, Request{Action: "upgrade"})); got != nil {
		t.Errorf("upgrade, the noarch build delivered: findings %q, want none (dnf may take either)", got)
	}
}

// M4 across architectures: a newer build the package may move to (noarch)
// makes an older one a replay; a newer build of another architecture
// (i686 for x86_64) does not (CheckArch refuses an i686 build nobody asked
// for: TestCheckArch).
func TestCheckMembershipOlderBuildAcrossArches(t *testing.T) {
	current := buildSnapshot(t, day0, "foo-1.0-1.x86_64", "foo-1.1-1.noarch", "bar-2.0-1.x86_64", "bar-2.1-1.i686")
	pub := newPublisher(t, nil)
	s := loadState(t, t.TempDir(), day0)
	received := current.received(t, "foo-1.0-1.x86_64", "bar-2.0-1.x86_64")
	repo, findings := s.VerifyRepomd(current.signedBy(t, "updates", pub, pub.pinned, day0), received)
	if repo == nil {
		t.Fatal(findings)
	}
	want := []string{"rejected older-build foo-1.0-1.x86_64.rpm"}
	if k := kinds(s.CheckMembership([]*VerifiedRepo{repo}, nil, nil, received, Request{Action: "upgrade"})); !slices.Equal(k, want) {
		t.Errorf("findings %q, want %q", k, want)
	}
}

// M4 where the repository keeps old versions: an older build that the
// current metadata still lists is a replay unless the user named it.
func TestCheckMembershipOlderListedBuild(t *testing.T) {
	current := buildSnapshot(t, day0, "foo-1.0-1.noarch", "foo-1.0-2.noarch", "foo-1.1-1.noarch", "bar-2.0-1.x86_64")
	pub := newPublisher(t, nil)
	s := loadState(t, t.TempDir(), day0)
	received := current.received(t, "foo-1.0-1.noarch", "foo-1.1-1.noarch", "bar-2.0-1.x86_64")
	repo, findings := s.VerifyRepomd(current.signedBy(t, "updates", pub, pub.pinned, day0), received)
	if repo == nil {
		t.Fatal(findings)
	}
	older := received[:1]
	for _, c := range []struct {
		name string
		req  Request
		want []string
	}{
		{"upgrade", Request{Action: "upgrade"}, []string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		{"install by name", Request{Action: "install", Packages: []string{"foo"}}, []string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		// foo-1.0 names foo-1.0-2 as well, which dnf would pick: 1.0-1 is a replay (M4).
		{"install of that version, an older release", Request{Action: "install", Packages: []string{"foo-1.0"}}, []string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		{"install of that version and release", Request{Action: "install", Packages: []string{"foo-1.0-1"}}, nil},
		{"install of that build with its epoch, as dnf takes it", Request{Action: "install", Packages: []string{"foo-0:1.0-1"}}, nil},
		{"install of that version with its epoch, an older release", Request{Action: "install", Packages: []string{"foo-0:1.0"}}, []string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		{"install of that release by glob", Request{Action: "install", Packages: []string{"foo-1.0-1*"}}, nil},
		{"install by a glob that also matches the name", Request{Action: "install", Packages: []string{"fo*"}}, []string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		{"install of everything", Request{Action: "install", Packages: []string{"*"}}, []string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		{"install by name.arch glob", Request{Action: "install", Packages: []string{"foo.*"}}, []string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		// Matches the name, and of the version forms only foo-1.0-1's ("foo-1.0-1" ends in "0-1"):
		// naming the package by its name, it asks for no build in particular.
		{"install by a glob matching the name and that build alone", Request{Action: "install", Packages: []string{"*[fo0]?[o1]"}},
			[]string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		{"consented downgrade", Request{Action: "downgrade", Packages: []string{"foo"}, AllowDowngradeUnsafe: true}, nil},
		{"downgrade without --allow-downgrade", Request{Action: "downgrade", Packages: []string{"foo"}}, []string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		{"reinstall", Request{Action: "reinstall", Packages: []string{"foo"}}, nil},
		{"reinstall of another package", Request{Action: "reinstall", Packages: []string{"bar"}}, []string{"rejected older-build foo-1.0-1.noarch.rpm"}},
		{"newest build", Request{Action: "upgrade"}, nil},
	} {
		got := older
		if c.name == "newest build" {
			got = received[1:]
		}
		if k := kinds(s.CheckMembership([]*VerifiedRepo{repo}, nil, nil, got, c.req)); !slices.Equal(k, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, k, c.want)
		}
	}
}

func TestCheckWithholding(t *testing.T) {
	repos := []*VerifiedRepo{
		verified(t, "updates", day0, 1, "foo-1.1-1.noarch", "foo-1.0.5-1.noarch", "bar-2.1-1.x86_64", "bar-2.2-1.i686", "baz-3.0-1.x86_64", "bar-9-1.src"),
		verified(t, "kernel", day0, 1, "kernel-6.3-1.x86_64", "kernel-6.2-1.x86_64", "kernel-ng-7.0-1.x86_64"),
	}
	installed := []NEVRA{nevra(t, "foo-1.0-1.x86_64"), nevra(t, "bar-2.0-1.x86_64"), nevra(t, "qux-1.0-1.noarch"),
		nevra(t, "kernel-6.1-1.x86_64"), nevra(t, "kernel-6.2-1.x86_64")}
	received := func(nevras ...string) []ReceivedPackage {
		var out []ReceivedPackage
		for _, n := range nevras {
			out = append(out, ReceivedPackage{File: n + ".rpm", Package: Package{NEVRA: nevra(t, n)}})
		}
		return out
	}
	all := received("foo-1.1-1.noarch", "bar-2.1-1.x86_64", "kernel-6.3-1.x86_64")
	for _, c := range []struct {
		name     string
		received []ReceivedPackage
		req      Request
		want     []string
	}{
		{"every update delivered", all, Request{Action: "upgrade"}, nil},
		{"M1: nothing delivered", nil, Request{Action: "upgrade"}, []string{
			"rejected withheld bar-2.1-1.x86_64", "rejected withheld foo-1.1-1.noarch", "rejected withheld kernel-6.3-1.x86_64"}},
		{"M2: one update held back", all[:2], Request{Action: "update"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
		{"an older update instead of the newest", received("foo-1.1-1.noarch", "bar-2.1-1.x86_64", "kernel-6.2-1.x86_64"),
			Request{Action: "upgrade"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
		// Newer than the installed build, but not the newest listed one.
		{"an update between the installed and the newest", received("foo-1.0.5-1.noarch", "bar-2.1-1.x86_64", "kernel-6.3-1.x86_64"),
			Request{Action: "upgrade"}, []string{"rejected withheld foo-1.1-1.noarch"}},
		// A newer build of an architecture the installed one cannot move to is no update of it.
		{"a build of another architecture instead", received("foo-1.1-1.noarch", "bar-2.2-1.i686", "kernel-6.3-1.x86_64"),
			Request{Action: "upgrade"}, []string{"rejected withheld bar-2.1-1.x86_64"}},
		{"excluded by the user", all[:2], Request{Action: "upgrade", Exclude: []string{"kern*"}}, nil},
		{"excluded by version", all[:2], Request{Action: "upgrade", Exclude: []string{"kernel-6.3-*"}}, nil},
		{"excluded by its own repository", all[:2], Request{Action: "upgrade"}, nil},
		// Another repository's excludepkgs=kernel* hides nothing in this one (M2).
		{"excluded by another repository only", all[:2], Request{Action: "upgrade"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
		{"user named other packages", all[:1], Request{Action: "upgrade", Packages: []string{"foo"}}, nil},
		{"user named a withheld package", nil, Request{Action: "upgrade", Packages: []string{"foo"}},
			[]string{"rejected withheld foo-1.1-1.noarch"}},
		// name.arch names builds of that arch: dnf leaves foo.x86_64 alone when only noarch builds are newer.
		{"user named the installed arch, only other arches newer", nil, Request{Action: "upgrade", Packages: []string{"foo.x86_64"}}, nil},
		{"user named the newer builds' arch", nil, Request{Action: "upgrade", Packages: []string{"foo.noarch"}},
			[]string{"rejected withheld foo-1.1-1.noarch"}},
		// By the update's own version, which the installed build's forms do not match.
		{"user named the withheld update", nil, Request{Action: "upgrade", Packages: []string{"foo-1.1"}},
			[]string{"rejected withheld foo-1.1-1.noarch"}},
		{"user named the update delivered", received("foo-1.1-1.noarch"), Request{Action: "upgrade", Packages: []string{"foo-1.1"}}, nil},
		// dnf upgrades a package named by a version to the newest build that version names.
		{"user named a version below the newest, delivered", received("foo-1.0.5-1.noarch"), Request{Action: "upgrade", Packages: []string{"foo-1.0.*"}}, nil},
		{"user named a version below the newest, withheld", nil, Request{Action: "upgrade", Packages: []string{"foo-1.0.*"}},
			[]string{"rejected withheld foo-1.0.5-1.noarch"}},
		{"user named the installed version", nil, Request{Action: "upgrade", Packages: []string{"foo-1.0"}}, nil},
		{"install promises no updates", nil, Request{Action: "install", Packages: []string{"baz"}}, nil},
		{"malformed pattern", all, Request{Action: "upgrade", Exclude: []string{"[x"}}, []string{"rejected bad-request "}},
		// includepkgs: dnf offers only what matches, from dnf.conf for all, or from one repository.
		{"not included by dnf.conf", all[:2], Request{Action: "upgrade", Include: []string{"foo", "bar*"}}, nil},
		{"included by dnf.conf", all[:1], Request{Action: "upgrade", Include: []string{"foo", "bar*"}}, []string{"rejected withheld bar-2.1-1.x86_64"}},
		{"not included by its own repository", all[:2], Request{Action: "upgrade"}, nil},
		{"included by another repository only", all[:2], Request{Action: "upgrade"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
		// dnf.conf's and a repository's includes add up (dnf's base.py: one set of includes).
		{"included by dnf.conf or its repository", all[:1], Request{Action: "upgrade", Include: []string{"foo"}}, []string{
			"rejected withheld bar-2.1-1.x86_64", "rejected withheld kernel-6.3-1.x86_64"}},
		{"fnmatch's negated class", all[:2], Request{Action: "upgrade", Exclude: []string{"[!fb]*"}}, nil},
		{"malformed include", all[:2], Request{Action: "upgrade", Include: []string{"foo", "[x"}}, []string{"rejected bad-request "}},
		// dnf also matches the forms with the epoch, 0 included.
		{"excluded with its epoch", all[:2], Request{Action: "upgrade", Exclude: []string{"kernel-0:6.3-1"}}, nil},
		// A delivered package of another name, listed in verified metadata,
		// that obsoletes the installed version and the newest listed one
		// replaces it (a rename): a notice; the front end checks that dnf
		// installed it.
		{"obsoleted by a delivered package", append(all[:2:2], obsoleting(t, "kernel-ng-7.0-1.x86_64", listedNG, "kernel", rpmver.SenseLess, "7")),
			Request{Action: "upgrade"}, []string{"notice replaced kernel-ng-7.0-1.x86_64.rpm"}},
		{"obsoletes that miss the installed version", append(all[:2:2], obsoleting(t, "kernel-ng-7.0-1.x86_64", listedNG, "kernel", rpmver.SenseLess, "6.2")),
			Request{Action: "upgrade"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
		// Only the installed package's own replacement excuses its update:
		// a range above it (Obsoletes: kernel > 6.2) leaves it installed.
		{"obsoletes above the installed version", append(all[:2:2], obsoleting(t, "kernel-ng-7.0-1.x86_64", listedNG, "kernel", rpmver.SenseGreater, "6.2")),
			Request{Action: "upgrade"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
		// The update the UpdateVM holds back is outside the range: dnf would
		// install it, not the obsoleting package.
		{"obsoletes that stop below the newest listed build", append(all[:2:2], obsoleting(t, "kernel-ng-7.0-1.x86_64", listedNG, "kernel", rpmver.SenseLess, "6.3")),
			Request{Action: "upgrade"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
		// Signed, but in no verified metadata (a repository without a pinned key).
		{"obsoleted by a package no verified metadata lists", append(all[:2:2], obsoleting(t, "kernel-ng-7.0-1.x86_64", [32]byte{}, "kernel", rpmver.SenseLess, "7")),
			Request{Action: "upgrade"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
		{"obsoletes of another name", append(all[:2:2], obsoleting(t, "kernel-ng-7.0-1.x86_64", listedNG, "kernel-core", 0, "")),
			Request{Action: "upgrade"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
		// A build of the same name is an update, never a replacement.
		{"an older build of the name obsoleting it", append(all[:2:2], obsoleting(t, "kernel-6.2-1.x86_64", [32]byte{1, 1}, "kernel", 0, "")),
			Request{Action: "upgrade"}, []string{"rejected withheld kernel-6.3-1.x86_64"}},
	} {
		s := &FreshnessState{}
		repos[0].Exclude, repos[1].Exclude, repos[0].Include, repos[1].Include = nil, nil, nil, nil
		switch c.name {
		case "excluded by its own repository":
			repos[1].Exclude = []string{"kernel*"}
		case "excluded by another repository only":
			repos[0].Exclude = []string{"kernel*"}
		case "not included by its own repository":
			repos[1].Include = []string{"kernel-headers"}
		case "included by another repository only":
			repos[0].Include = []string{"foo", "bar"}
		case "included by dnf.conf or its repository":
			repos[0].Include, repos[1].Include = []string{"bar"}, []string{"kernel"}
		}
		if got := kinds(s.CheckWithholding(repos, nil, installed, c.received, c.req)); !slices.Equal(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
	}
}

// obsoleting is a received package n with this SHA-256 whose header
// obsoletes name in the range.
func obsoleting(t *testing.T, n string, sha256 [32]byte, name string, flags uint32, version string) ReceivedPackage {
	return ReceivedPackage{File: n + ".rpm", Package: Package{NEVRA: nevra(t, n), SHA256: sha256},
		Obsoletes: []rpm.Obsolete{{Name: name, Flags: flags, Version: version}}}
}

// listedNG is the SHA-256 verified() gives kernel-ng-7.0-1, the third
// package of TestCheckWithholding's kernel repository.
var listedNG = [32]byte{2, 1}

func TestCheckDowngrade(t *testing.T) {
	installed := []NEVRA{nevra(t, "foo-2.0-1.x86_64"), nevra(t, "kernel-6.1-1.x86_64"), nevra(t, "kernel-6.3-1.x86_64")}
	pkg := func(n string) []ReceivedPackage {
		return []ReceivedPackage{{File: n + ".rpm", Package: Package{NEVRA: nevra(t, n)}}}
	}
	for _, c := range []struct {
		name     string
		received []ReceivedPackage
		req      Request
		want     []string
	}{
		{"M8: downgrade through a dependency", pkg("foo-1.9-1.x86_64"), Request{Action: "upgrade"},
			[]string{"rejected downgrade foo-1.9-1.x86_64.rpm"}},
		{"downgrade to noarch", pkg("foo-1:0.1-1.noarch"), Request{Action: "install"}, nil},
		{"older epoch-less noarch", pkg("foo-1.0-1.noarch"), Request{Action: "install"},
			[]string{"rejected downgrade foo-1.0-1.noarch.rpm"}},
		{"downgrade without --allow-downgrade", pkg("foo-1.9-1.x86_64"), Request{Action: "downgrade"},
			[]string{"rejected downgrade foo-1.9-1.x86_64.rpm"}},
		{"--allow-downgrade without --action=downgrade", pkg("foo-1.9-1.x86_64"), Request{Action: "upgrade", AllowDowngradeUnsafe: true},
			[]string{"rejected downgrade foo-1.9-1.x86_64.rpm"}},
		{"downgrade asked for", pkg("foo-1.9-1.x86_64"), Request{Action: "downgrade", AllowDowngradeUnsafe: true}, nil},
		{"reinstall", pkg("foo-2.0-1.x86_64"), Request{Action: "reinstall"}, nil},
		{"other arch", pkg("foo-1.0-1.i686"), Request{Action: "install"}, nil},
		{"kernel between two installed", pkg("kernel-6.2-1.x86_64"), Request{Action: "upgrade"},
			[]string{"rejected downgrade kernel-6.2-1.x86_64.rpm"}},
	} {
		s := &FreshnessState{}
		if got := kinds(s.CheckDowngrade(installed, c.received, c.req)); !slices.Equal(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
	}
}

// An UpdateVM that delivers a build of another architecture than dom0's
// (i686 on x86_64) could replay an older signed build past the older-build
// check, which compares builds of one architecture, and move a noarch or
// new package onto a track whose updates stop (M4): refused unless dnf
// would take it honestly.
func TestCheckArch(t *testing.T) {
	installed := []NEVRA{nevra(t, "foo-1.0-1.noarch"), nevra(t, "lib-2.0-1.i686"), nevra(t, "lib-2.0-1.x86_64")}
	pkg := func(n string) ReceivedPackage {
		return ReceivedPackage{File: n + ".rpm", Package: Package{NEVRA: nevra(t, n)}}
	}
	renamed := pkg("libng-3.0-1.i686") // Obsoletes: lib < 3.0
	renamed.Obsoletes = []rpm.Obsolete{{Name: "lib", Flags: rpmver.SenseLess, Version: "3.0"}}
	listing := func(names ...string) []*VerifiedRepo {
		repo := &VerifiedRepo{ID: "updates"}
		for _, n := range names {
			repo.Packages = append(repo.Packages, Package{NEVRA: nevra(t, n)})
		}
		return []*VerifiedRepo{repo}
	}
	excluded := func(pattern string, names ...string) []*VerifiedRepo {
		repos := listing(names...)
		repos[0].Exclude = []string{pattern}
		return repos
	}
	otherArch := func(file string) []string { return []string{"rejected other-arch " + file} }
	for _, c := range []struct {
		name, machine string
		repos         []*VerifiedRepo
		received      []ReceivedPackage
		named         []string
		want          []string
	}{
		{"the machine's own build", "x86_64", nil, []ReceivedPackage{pkg("bar-1.0-1.x86_64")}, nil, nil},
		{"noarch", "x86_64", nil, []ReceivedPackage{pkg("bar-1.0-1.noarch")}, nil, nil},
		{"i686 nobody asked for", "x86_64", nil, []ReceivedPackage{pkg("movable-2.0-1.i686")}, nil, otherArch("movable-2.0-1.i686.rpm")},
		{"noarch moved to i686", "x86_64", nil, []ReceivedPackage{pkg("foo-2.0-1.i686")}, nil, otherArch("foo-2.0-1.i686.rpm")},
		{"the installed i686 track", "x86_64", nil, []ReceivedPackage{pkg("lib-2.1-1.i686")}, nil, nil},
		// dnf install of the new name takes this machine's build, replacing the i686 one
		// (an upgrade keeps the architecture: below).
		{"a rename installed by its new name", "x86_64", nil, []ReceivedPackage{renamed}, []string{"libng"}, otherArch("libng-3.0-1.i686.rpm")},
		{"a rename of nothing installed on i686", "x86_64", nil, []ReceivedPackage{pkg("libng-3.0-1.i686")}, nil, otherArch("libng-3.0-1.i686.rpm")},
		// dnf would take the i686 build if the UpdateVM held back what the x86_64 one needs
		// (multilib_policy=all installing both must name the arch).
		{"with its x86_64 build", "x86_64", nil, []ReceivedPackage{pkg("ab-2.0-1.x86_64"), pkg("ab-1.0-1.i686")}, nil, otherArch("ab-1.0-1.i686.rpm")},
		{"with another package's x86_64 build", "x86_64", nil, []ReceivedPackage{pkg("ab-1.0-1.x86_64"), pkg("movable-2.0-1.i686")}, nil, otherArch("movable-2.0-1.i686.rpm")},
		{"listed for i686 only (a 32-bit dependency)", "x86_64", listing("lib32-1.0-1.i686", "lib32-0.9-1.i686"), []ReceivedPackage{pkg("lib32-1.0-1.i686")}, nil, nil},
		{"listed for x86_64 too", "x86_64", listing("movable-2.0-1.i686", "movable-3.0-1.x86_64"), []ReceivedPackage{pkg("movable-2.0-1.i686")}, nil, otherArch("movable-2.0-1.i686.rpm")},
		{"x86_64 left out by excludepkgs", "x86_64", excluded("movable.x86_64", "movable-2.0-1.i686", "movable-2.0-1.x86_64"), []ReceivedPackage{pkg("movable-2.0-1.i686")}, nil, nil},
		{"listed as noarch too", "x86_64", listing("movable-2.0-1.i686", "movable-1.0-1.noarch"), []ReceivedPackage{pkg("movable-2.0-1.i686")}, nil, otherArch("movable-2.0-1.i686.rpm")},
		{"named by name.arch", "x86_64", nil, []ReceivedPackage{pkg("movable-2.0-1.i686")}, []string{"movable.i686"}, nil},
		{"named by its full name", "x86_64", nil, []ReceivedPackage{pkg("movable-2.0-1.i686")}, []string{"movable-2.0-1.i686"}, nil},
		{"named by an arch glob", "x86_64", nil, []ReceivedPackage{pkg("movable-2.0-1.i686")}, []string{"*.i686"}, nil},
		{"named by its name only", "x86_64", nil, []ReceivedPackage{pkg("movable-2.0-1.i686")}, []string{"movable"}, otherArch("movable-2.0-1.i686.rpm")},
		{"a glob that matches the name too", "x86_64", nil, []ReceivedPackage{pkg("movable-2.0-1.i686")}, []string{"movable*"}, otherArch("movable-2.0-1.i686.rpm")},
		{"another machine's build", "x86_64", nil, []ReceivedPackage{pkg("bar-1.0-1.aarch64")}, nil, otherArch("bar-1.0-1.aarch64.rpm")},
		{"x86_64 on aarch64", "aarch64", nil, []ReceivedPackage{pkg("bar-1.0-1.x86_64")}, nil, otherArch("bar-1.0-1.x86_64.rpm")},
	} {
		s := &FreshnessState{}
		if got := kinds(s.CheckArch(c.repos, true, installed, c.received, Request{Action: "install", Packages: c.named}, c.machine)); !slices.Equal(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
	}
	// An upgrade keeps a renamed multilib package on its architecture.
	if got := (&FreshnessState{}).CheckArch(nil, true, installed, []ReceivedPackage{renamed}, Request{Action: "upgrade"}, "x86_64"); len(got) != 0 {
		t.Errorf("a rename of an installed i686 package on an upgrade: %q", kinds(got))
	}
	// A repository without signed metadata may offer the x86_64 build dnf would take.
	if got := kinds((&FreshnessState{}).CheckArch(listing("lib32-1.0-1.i686"), false, installed, []ReceivedPackage{pkg("lib32-1.0-1.i686")}, Request{Action: "install"}, "x86_64")); !slices.Equal(got, otherArch("lib32-1.0-1.i686.rpm")) {
		t.Errorf("listed for i686 only, beside an unverifiable repository: %q", got)
	}
	// Evaluate runs it with the batch's machine, with or without signed metadata.
	v := (&FreshnessState{}).Evaluate(Batch{Received: []ReceivedPackage{pkg("movable-2.0-1.i686")}, Installed: installed, Request: Request{Action: "install"}, Machine: "x86_64"})
	if !slices.Contains(kinds(v.Findings), "rejected other-arch movable-2.0-1.i686.rpm") {
		t.Errorf("Evaluate: findings %q, want other-arch among them", kinds(v.Findings))
	}
}

// With every repository disabled (`--disablerepo='*'`), dnf in the UpdateVM has nowhere to take
// a package from: a delivery that holds one is refused, not waved through unchecked (M6).
func TestEvaluateNoRepositoryEnabled(t *testing.T) {
	s := &FreshnessState{}
	pkg := ReceivedPackage{File: "hello-2.0-1.noarch.rpm", Package: Package{NEVRA: nevra(t, "hello-2.0-1.noarch")}}
	v := s.Evaluate(Batch{Received: []ReceivedPackage{pkg}, Request: Request{Action: "upgrade"}})
	if v.Accepted() || !slices.Equal(kinds(v.Findings), []string{"rejected extraneous "}) {
		t.Errorf("findings %q, accepted %v: want the delivery refused as extraneous", kinds(v.Findings), v.Accepted())
	}
	if v := s.Evaluate(Batch{Request: Request{Action: "upgrade"}}); !v.Accepted() {
		t.Errorf("an empty delivery with no repository enabled: %q", kinds(v.Findings))
	}
}

// A repository listed twice (a front end's or a session's mistake) refuses the batch rather
// than being judged twice or once at random.
func TestEvaluateRepoListedTwice(t *testing.T) {
	s := &FreshnessState{}
	v := s.Evaluate(Batch{Repos: []RepoFiles{{ID: "updates"}, {ID: "updates"}}, Request: Request{Action: "upgrade"}})
	if v.Accepted() || !slices.Contains(kinds(v.Findings), "rejected bad-request ") {
		t.Errorf("findings %q, accepted %v: want the batch refused", kinds(v.Findings), v.Accepted())
	}
}

// The same build listed by a better- and a worse-priority repository (a
// mirror, or a build copied from one to the other): dnf takes it from the
// better one, whose newest it is, so delivering it is the honest upgrade,
// neither a replay of the worse repository's newer build nor a priority
// notice, whichever repository comes first (M4; dnf's priorities).
func TestPrioritiesSameBuildInTwoRepositories(t *testing.T) {
	installed := []NEVRA{nevra(t, "hello-1.1-1.noarch")}
	hi := verified(t, "hi", day0, 1, "hello-1.2-1.noarch")
	hi.Priority = 1
	lo := verified(t, "lo", day0, 1, "hello-1.2-1.noarch", "hello-1.5-1.noarch") // 1.2: hi's digest
	lo.Priority = 99
	received := []ReceivedPackage{{File: "hello-1.2-1.noarch.rpm", Package: hi.Packages[0]}}
	s := loadState(t, t.TempDir(), day0)
	req := Request{Action: "upgrade"}
	for _, repos := range [][]*VerifiedRepo{{hi, lo}, {lo, hi}} {
		findings := append(s.CheckMembership(repos, nil, installed, received, req), s.CheckWithholding(repos, nil, installed, received, req)...)
		if len(findings) != 0 {
			t.Errorf("repositories in the order %s, %s: findings %q, want none", repos[0].ID, repos[1].ID, kinds(findings))
		}
	}
}

// dnf's choice starts at the installed build of the same name and an
// architecture it may move to: with hello.i686 installed at 1.1 beside a
// hello.x86_64 at 2.0, and an installonly package installed twice (the
// newest, 1.3, counts), the better-priority repository's builds below the
// floor do not count, those above it do (dnf's priorities, measured with
// dnf 4.14: TestPriorities).
func TestPrioritiesInstalledFloor(t *testing.T) {
	s := loadState(t, t.TempDir(), day0)
	for _, c := range []struct {
		name      string
		installed []string
		hi, lo    string
		want      []string
	}{
		{"another architecture's installed build is no floor", []string{"hello-1.1-1.i686", "hello-2.0-1.x86_64"}, "hello-1.2-1.i686", "hello-1.5-1.i686",
			[]string{"notice priority hello-1.5-1.i686.rpm"}},
		{"the newest of two installed builds is the floor", []string{"hello-1.3-1.noarch", "hello-1.1-1.noarch"}, "hello-1.2-1.noarch", "hello-1.5-1.noarch", nil},
	} {
		var installed []NEVRA
		for _, i := range c.installed {
			installed = append(installed, nevra(t, i))
		}
		hi := verified(t, "hi", day0, 1, c.hi)
		hi.Priority = 1
		lo := verified(t, "lo", day0, 1, c.lo)
		lo.Priority = 99
		lo.Packages[0].SHA256[1] = 2 // not hi's digest
		received := []ReceivedPackage{{File: c.lo + ".rpm", Package: lo.Packages[0]}}
		if got := kinds(s.CheckMembership([]*VerifiedRepo{hi, lo}, nil, installed, received, Request{Action: "upgrade"})); !slices.Equal(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
	}
}

// The repository's priority= reaches the checks through VerifyRepomd:
// dropped there, every repository would be of one priority, and an honest
// upgrade from the better-priority repository a replay of the other's
// newer build (TestPriorities).
func TestVerifyRepomdKeepsThePriority(t *testing.T) {
	current := buildSnapshot(t, day0, "foo-1.1-1.noarch")
	pub := newPublisher(t, nil)
	s := loadState(t, t.TempDir(), day0)
	files := current.signedBy(t, "updates", pub, pub.pinned, day0)
	files.Priority = 7
	repo, findings := s.VerifyRepomd(files, current.received(t, "foo-1.1-1.noarch"))
	if repo == nil || repo.Priority != 7 {
		t.Errorf("verified repo %+v (findings %v), want priority 7", repo, findings)
	}
}

// A withheld update's refusal names a repository without signed metadata
// as where dnf may have taken the package instead only when dnf would
// have: a strictly better priority, and offering the package (its
// includepkgs let it); the verdict (Evaluate) passes those repositories on
// (M1; docs/freshness.md, "withheld").
func TestWithheldNamesOnlyABetterUnsignedRepository(t *testing.T) {
	installed := []NEVRA{nevra(t, "hello-1.1-1.noarch")}
	hi := verified(t, "hi", day0, 1, "hello-1.2-1.noarch")
	hi.Priority = 50
	s := loadState(t, t.TempDir(), day0)
	upgrade := Request{Action: "upgrade"}
	for _, c := range []struct {
		unsigned RepoFiles
		named    bool
	}{
		{RepoFiles{ID: "better", Priority: 10}, true},
		{RepoFiles{ID: "same", Priority: 50}, false},
		{RepoFiles{ID: "fenced", Priority: 10, Include: []string{"other*"}}, false},
	} {
		f := s.CheckWithholding([]*VerifiedRepo{hi}, []RepoFiles{c.unsigned}, installed, nil, upgrade)
		if len(f) != 1 || f[0].Kind != Withheld || strings.Contains(f[0].Detail, "from repo "+c.unsigned.ID) != c.named {
			t.Errorf("repo %s (priority %d, includepkgs %q): %v; want withheld, naming it: %v", c.unsigned.ID, c.unsigned.Priority, c.unsigned.Include, f, c.named)
		}
	}
	pub := newPublisher(t, nil)
	snap := buildSnapshot(t, day0, "foo-1.1-1.noarch")
	signed := snap.signedBy(t, "updates", pub, pub.pinned, day0)
	signed.Priority = 50
	v := loadState(t, t.TempDir(), day0.Add(time.Hour)).Evaluate(Batch{
		Repos:     []RepoFiles{signed, {ID: "thirdparty", Priority: 10}},
		Installed: []NEVRA{nevra(t, "foo-1.0-1.noarch")},
		Request:   upgrade,
	})
	if !slices.ContainsFunc(v.Findings, func(f Finding) bool {
		return f.Kind == Withheld && strings.Contains(f.Detail, "or dnf took foo from repo thirdparty")
	}) {
		t.Errorf("Evaluate: findings %v; want foo's update withheld, naming repo thirdparty", v.Findings)
	}
}
