package repometa

import (
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strings"

	"pedos.dev/updates/internal/rpm"
	"pedos.dev/updates/internal/rpmver"
)

// ReceivedPackage is a package of the batch that passed the signature
// checks: what its verified header says it is, and the size and SHA-256 of
// the file as received (before any canonical rewrite, since primary lists
// the publisher's file).
type ReceivedPackage struct {
	Package
	File      string         // the staged file name, for messages
	Obsoletes []rpm.Obsolete // from its verified header
}

// Request is what the user asked for.
type Request struct {
	Action               string   // the dnf verb: upgrade, install, downgrade, ...
	Packages             []string // the user's package arguments (dnf specs, globs allowed)
	Exclude              []string // --exclude and excludepkgs globs
	Include              []string // dnf.conf's includepkgs globs: where set, only these are offered
	AllowDowngradeUnsafe bool     // --allow-downgrade: older versions may replace newer ones
}

// NetworkRepos is what dom0's network repository definitions and dnf.conf
// say the UpdateVM's dnf will use with the user's --enablerepo and
// --disablerepo: the front end reads them when it starts the session
// (internal/dnfconf), and the session carries them to the receive service
// (dom0.Session.Repos), which parses no configuration file.
type NetworkRepos struct {
	// Enabled are the repository ids enabled after the user's
	// --enablerepo and --disablerepo globs, applied in their order, as dnf
	// applies them.
	Enabled []string `json:"enabled"`
	// Excludes are the excludepkgs (or exclude) globs of dnf.conf's [main]:
	// dnf never offers those packages from any repository.
	Excludes []string `json:"excludes,omitempty"`
	// RepoExcludes are each enabled repository's own excludepkgs: dnf
	// leaves those packages out of that repository only (M2).
	RepoExcludes map[string][]string `json:"repo_excludes,omitempty"`
	// Includes and RepoIncludes are the includepkgs globs, likewise: where
	// there are some, dnf offers only the packages they match.
	Includes     []string            `json:"includes,omitempty"`
	RepoIncludes map[string][]string `json:"repo_includes,omitempty"`
	// RepoPriorities are the repositories' priority= where set (dnf's
	// default is 99; a lower number wins): dnf takes a package from the
	// best-priority repository that offers it, even an older version.
	RepoPriorities map[string]int `json:"repo_priorities,omitempty"`
}

// Priority is a repository's priority as dnf uses it.
func (n NetworkRepos) Priority(id string) int {
	if p, ok := n.RepoPriorities[id]; ok {
		return p
	}
	return 99
}

// Batch is everything one run's freshness verdict depends on.
type Batch struct {
	Repos     []RepoFiles // every enabled repository, with or without metadata
	Received  []ReceivedPackage
	Installed []NEVRA // dom0's rpm database
	Request   Request
	Policy    Policy
	Machine   string // dom0's architecture (uname: x86_64, aarch64): the builds dnf prefers
}

// Evaluate runs the steps of verify.md §2 in their order and collects the
// findings and a summary per repository. It changes nothing on disk. When
// some metadata failed steps 1–2, steps 5–6 are left out: the batch is
// rejected already, and its packages would all look extraneous.
func (s *FreshnessState) Evaluate(b Batch) *Verdict {
	v := &Verdict{}
	var unverifiable []RepoFiles
	metadataRejected := false
	for i, files := range b.Repos {
		if slices.ContainsFunc(b.Repos[:i], func(r RepoFiles) bool { return r.ID == files.ID }) {
			v.Findings = append(v.Findings, reject(BadRequest, files.ID, "", "repo %s is listed twice", files.ID))
			continue
		}
		repo, findings := s.VerifyRepomd(files, b.Received)
		v.Findings = append(v.Findings, findings...)
		switch {
		case repo != nil:
			v.verified = append(v.verified, repo)
		case files.Key == nil:
			unverifiable = append(unverifiable, files)
			v.Repos = append(v.Repos, RepoSummary{Repo: files.ID, Status: StatusNotVerifiable})
		default:
			v.Repos = append(v.Repos, RepoSummary{Repo: files.ID, Status: StatusRejected})
			metadataRejected = true
		}
	}
	floor := s.TimeFloor(v.verified)
	for _, repo := range v.verified {
		findings := append(s.CheckRollback(repo), s.CheckAge(repo, floor, b.Policy)...)
		v.Findings = append(v.Findings, findings...)
		status := StatusFresh
		if slices.ContainsFunc(findings, func(f Finding) bool { return f.Severity == Reject }) {
			status = StatusRejected
		} else if slices.ContainsFunc(findings, func(f Finding) bool { return f.Kind == Stale }) {
			status = StatusStale
		}
		v.Repos = append(v.Repos, RepoSummary{Repo: repo.ID, Status: status, Revision: repo.Revision,
			Time: repo.Timestamp, AgeSeconds: int64(floor.Sub(repo.Timestamp).Seconds()), Key: repo.KeyFingerprint})
	}
	if len(b.Repos) == 0 && len(b.Received) > 0 {
		// dnf in the UpdateVM had no repository to take them from (M6).
		v.Findings = append(v.Findings, reject(Extraneous, "", "",
			"no repository is enabled, yet the delivery holds %d package(s): none can have come from a repository dom0 knows", len(b.Received)))
	}
	if !metadataRejected {
		v.Findings = append(v.Findings, s.CheckMembership(v.verified, unverifiable, b.Installed, b.Received, b.Request)...)
		v.Findings = append(v.Findings, s.CheckWithholding(v.verified, unverifiable, b.Installed, b.Received, b.Request)...)
	}
	v.Findings = append(v.Findings, s.CheckDowngrade(b.Installed, b.Received, b.Request)...)
	v.Findings = append(v.Findings, s.CheckArch(v.verified, len(unverifiable) == 0, b.Installed, b.Received, b.Request, b.Machine)...)
	return v
}

// CheckMembership is verify.md §2 step 5: every received package must be
// listed with its SHA-256 and size in the verified primary of an enabled
// repository. Another build of a listed name is a replay or a mix of
// snapshots (M4, M5); a name not listed at all is extraneous (M6); a
// digest listed for a different package is wrong software. A package not
// listed while some repository is not verifiable gets a notice only, if
// its name is unlisted or it is newer than every listed build of it (it
// can only come from that repository; an older one would be a replay). A
// listed build with a newer one listed beside it (repositories that keep
// old versions) is a replay too (M4), unless the user asked for a
// downgrade, or is reinstalling that package (CheckDowngrade still keeps it
// from being older than the installed one); where the user named versions
// of the package, only the named builds count (hello-2.0 names hello-2.0-1,
// unless hello-2.0-2 is listed too). Only what a
// repository offers counts as listed in it: a build its own excludepkgs or
// includepkgs (or dnf.conf's) leave out is one dnf would never take from
// it, so a repository fenced off with includepkgs cannot lend its builds
// of other names to the UpdateVM. Repository priorities: a newer build
// counts only in a repository of the same or a better priority than the
// best one listing the received build (dnf takes the best priority's
// newest build); a received build that dnf would have taken from a
// better-priority repository only for a dependency that needs it is a
// notice, since dom0 does not resolve dependencies.
func (s *FreshnessState) CheckMembership(repos []*VerifiedRepo, unverifiable []RepoFiles, installed []NEVRA, received []ReceivedPackage, req Request) []Finding {
	if len(repos) == 0 {
		return nil // nothing signed to check against; VerifyRepomd said why
	}
	// By digest: the build listed, and the best priority of a repository
	// listing it.
	type digestListing struct {
		pkg      *Package
		priority int
	}
	bySHA := map[[sha256Size]byte]digestListing{}
	newestInst := newestInstalled(installed) // once, not per received package
	newest := map[string]*Package{}
	builds := map[string][]listing{} // every listed build, by name
	for _, r := range repos {
		for i := range r.Packages {
			p := &r.Packages[i]
			if !offers(p.NEVRA, req, r.Exclude, r.Include) {
				continue
			}
			d, seen := bySHA[p.SHA256]
			if !seen || r.Priority < d.priority {
				d.priority = r.Priority
			}
			d.pkg = p
			bySHA[p.SHA256] = d
			builds[p.Name] = append(builds[p.Name], listing{r.ID, r.Priority, p.NEVRA})
			if n := newest[p.Name]; n == nil || rpmver.Compare(p.EVR, n.EVR) > 0 {
				newest[p.Name] = p
			}
		}
	}
	var findings []Finding
	for _, r := range received {
		listed, priority, newestListed := bySHA[r.SHA256].pkg, bySHA[r.SHA256].priority, newest[r.Name]
		var from []string // the repositories without signed metadata that offer it
		for _, u := range unverifiable {
			if offers(r.NEVRA, req, u.Exclude, u.Include) {
				from = append(from, u.ID)
			}
		}
		switch {
		case listed != nil && listed.NEVRA == r.NEVRA && listed.Size == r.Size:
			// dnf chooses among the builds the user named by version or
			// arch (hello-1.5, hello-1.*, hello.x86_64) before priorities
			// count: a named build is judged among those; an unnamed one
			// (a dependency) among all, and a named build newer than it is
			// due too, whatever its repository's priority.
			candidates := builds[r.Name]
			named := slices.DeleteFunc(slices.Clone(candidates), func(l listing) bool { return !namesBuild(req.Packages, l.pkg) })
			isNamed := namesBuild(req.Packages, r.NEVRA)
			if isNamed {
				candidates = named
			}
			newer := newestBuild(candidates, r.NEVRA, priority)
			if newerNamed := newestBuild(named, r.NEVRA, math.MaxInt); !isNamed && rpmver.Compare(newerNamed.EVR, newer.EVR) > 0 {
				newer = newerNamed
			}
			preferred := dnfChoice(named, r.NEVRA, newestInst) // what dnf takes for the user's words, if they name this package
			if preferred == nil {
				preferred = dnfChoice(candidates, r.NEVRA, newestInst)
			}
			if preferred != nil && preferred.priority < priority {
				choice := "takes " + preferred.pkg.String() + " from"
				if slices.Contains(installed, preferred.pkg) {
					choice = "keeps the installed " + preferred.pkg.String() + ", offered by"
				}
				findings = append(findings, Finding{Kind: OtherPriority, Severity: Notice, Repo: preferred.repo, Package: r.File, Detail: fmt.Sprintf(
					"%s: dnf %s repo %s (priority %d) before this build (priority %d), unless a dependency needs this one",
					r.File, choice, preferred.repo, asWritten(preferred.priority), asWritten(priority))})
			}
			if rpmver.Compare(newer.EVR, r.EVR) > 0 &&
				!(req.Action == "downgrade" && req.AllowDowngradeUnsafe) &&
				!(req.Action == "reinstall" && Matches(req.Packages, r.NEVRA)) {
				findings = append(findings, reject(OlderBuild, "", r.File,
					"%s: %s is listed in signed metadata, but so is the newer %s: possible replay of an older build",
					r.File, r.NEVRA, newer))
			}
		case listed != nil:
			findings = append(findings, reject(WrongSoftware, "", r.File,
				"%s: its SHA-256 is listed in signed metadata for %s of %d bytes, but the file is %s of %d bytes: wrong software",
				r.File, listed.NEVRA, listed.Size, r.NEVRA, r.Size))
		case newestListed != nil && (len(from) == 0 || rpmver.Compare(r.EVR, newestListed.EVR) <= 0):
			what := r.NEVRA.String() + " is"
			if newestListed.NEVRA == r.NEVRA {
				what = "its SHA-256 is" // the same build listed (or offered) with other bytes
			}
			findings = append(findings, reject(NotInMetadata, "", r.File,
				"%s: %s not in the current signed metadata (as excludepkgs and includepkgs leave it), which lists %s: possible replay or mix-and-match",
				r.File, what, newestListed.NEVRA))
		case len(from) > 0:
			findings = append(findings, Finding{Kind: NotVerifiable, Severity: Notice, Package: r.File, Detail: fmt.Sprintf(
				"%s is in no signed metadata; it can only come from repo %s, whose freshness is not verifiable",
				r.File, strings.Join(from, ", "))})
		default:
			findings = append(findings, reject(Extraneous, "", r.File,
				"%s: no package %s in any signed metadata (as excludepkgs and includepkgs leave it): extraneous package that nobody asked for", r.File, r.Name))
		}
	}
	return findings
}

// CheckWithholding is verify.md §2 step 6 (M1, M2): on an upgrade, every
// installed package for which a verified primary lists a newer version
// (same name, compatible arch) must have been delivered, the build dnf
// picks (dnfChoice: repository priorities, the builds the user named) or a
// newer one, unless the user excluded it or named other packages, or
// dnf.conf or the repository leaves it out (excludepkgs, or includepkgs
// that do not match it). A delivered package of another name, listed in
// verified metadata, whose Obsoletes cover the installed version and the
// build due (or that comes from a better-priority repository) is its
// replacement (a renamed package), a notice: dnf installs that one in its
// place, and the front end checks that dnf did.
func (s *FreshnessState) CheckWithholding(repos []*VerifiedRepo, unverifiable []RepoFiles, installed []NEVRA, received []ReceivedPackage, req Request) []Finding {
	if req.Action != "upgrade" && req.Action != "update" {
		return nil // other actions do not promise every update
	}
	// A malformed include would match nothing and hide every update.
	patterns := slices.Concat(req.Exclude, req.Packages, req.Include)
	for _, r := range repos {
		patterns = append(patterns, r.Include...)
	}
	for _, pattern := range patterns {
		if _, err := fnmatch(pattern, ""); err != nil {
			return []Finding{reject(BadRequest, "", "", "package pattern %q is malformed", pattern)}
		}
	}
	listed, verifiedDigests := map[string][]listing{}, map[[sha256Size]byte]int{} // digest → best priority listing it
	for _, r := range repos {
		for _, p := range r.Packages {
			if best, ok := verifiedDigests[p.SHA256]; !ok || r.Priority < best {
				verifiedDigests[p.SHA256] = r.Priority
			}
			if p.Arch != "src" && p.Arch != "nosrc" && offers(p.NEVRA, req, r.Exclude, r.Include) {
				listed[p.Name] = append(listed[p.Name], listing{r.ID, r.Priority, p.NEVRA})
			}
		}
	}
	var findings []Finding
	for _, inst := range newestInstalled(installed) {
		if Matches(req.Exclude, inst) {
			continue
		}
		// Named packages: dnf upgrades a package named by its name to the
		// newest build, and one named by name.arch or a version (hello.noarch,
		// hello-1.*, hello-1.3) to the newest build those name.
		byName := len(req.Packages) == 0 || slices.ContainsFunc(req.Packages, func(pattern string) bool {
			return matchesAny(pattern, []string{inst.Name})
		})
		var candidates []listing
		for _, l := range listed[inst.Name] {
			if byName || Matches(req.Packages, l.pkg) {
				candidates = append(candidates, l)
			}
		}
		want := dnfChoice(candidates, inst, []NEVRA{inst})
		// A build the user's words do not name (a noarch one for
		// hello.x86_64) is none dnf takes for them.
		if want == nil || rpmver.Compare(want.pkg.EVR, inst.EVR) <= 0 || slices.ContainsFunc(received, func(r ReceivedPackage) bool {
			return r.Name == inst.Name && compatibleArch(inst.Arch, r.Arch) && rpmver.Compare(r.EVR, want.pkg.EVR) >= 0 && (byName || Matches(req.Packages, r.NEVRA))
		}) {
			continue
		}
		// A replacement (a rename) must be listed in verified metadata and
		// obsolete the build due too, or come from a repository of a better
		// priority than that build's (dnf prunes its candidates, the
		// obsoleting ones among them, by priority first): otherwise dnf
		// would install that build, and an UpdateVM could hide a security
		// update behind a package whose Obsoletes stop below it.
		if i := slices.IndexFunc(received, func(r ReceivedPackage) bool {
			priority, ok := verifiedDigests[r.SHA256]
			return r.Name != inst.Name && ok && obsoletes(r.Obsoletes, inst) && (obsoletes(r.Obsoletes, want.pkg) || priority < want.priority)
		}); i >= 0 {
			// Said even when the run stops before dnf (--downloadonly):
			// only dnf's transaction shows that the replacement happened.
			findings = append(findings, Finding{Kind: Replaced, Severity: Notice, Repo: want.repo, Package: received[i].File, Detail: fmt.Sprintf(
				"update %s listed in signed metadata was not delivered: %s obsoletes the installed %s and takes its place once dnf installs it",
				want.pkg, received[i].NEVRA, inst)})
			continue
		}
		// A better-priority repository without signed metadata may offer
		// what dnf took instead: dom0 cannot see it, so the refusal may be
		// false, and says how to make it checkable.
		var unseen []string
		for _, u := range unverifiable {
			if u.Priority < want.priority && offers(inst, req, u.Exclude, u.Include) {
				unseen = append(unseen, u.ID)
			}
		}
		cause := "possible freeze attack"
		if len(unseen) > 0 {
			cause = fmt.Sprintf("possible freeze attack, or dnf took %s from repo %s, of a better priority and without signed metadata to check (pin its metadata key, or give both the same priority)", inst.Name, strings.Join(unseen, ", "))
		}
		findings = append(findings, reject(Withheld, want.repo, want.pkg.String(),
			"update %s listed in signed metadata was not delivered: %s (repo %s; installed: %s)",
			want.pkg, cause, want.repo, inst))
	}
	return findings
}

// asWritten is a priority as the .repo file writes it: dnfconf ranks
// -2147483648 last, as libsolv does, by reading it as 2147483648.
func asWritten(priority int) int {
	if priority > math.MaxInt32 {
		return math.MinInt32
	}
	return priority
}

// listing is a build a repository offers, with the repository's priority.
type listing struct {
	repo     string
	priority int
	pkg      NEVRA
}

// dnfChoice is the build of p's name (and a compatible arch) that dnf
// upgrades or installs to, as libsolv picks it (measured with dnf 4.14):
// of the builds at least as new as the installed one (all, when none is
// installed), those of the best priority (the lowest number), and of
// them the newest. A better-priority repository that offers only older
// builds does not count; one that offers the installed version leaves
// nothing to do. newestInst is newestInstalled's list. nil: no such build.
func dnfChoice(builds []listing, p NEVRA, newestInst []NEVRA) *listing {
	var floor *NEVRA // the installed build
	for k := range newestInst {
		if newestInst[k].Name == p.Name && compatibleArch(newestInst[k].Arch, p.Arch) {
			floor = &newestInst[k] // not the loop variable's address: one allocation per package
		}
	}
	var choice *listing
	for i, l := range builds {
		if !compatibleArch(p.Arch, l.pkg.Arch) || floor != nil && rpmver.Compare(l.pkg.EVR, floor.EVR) < 0 {
			continue
		}
		if choice == nil || l.priority < choice.priority || l.priority == choice.priority && rpmver.Compare(l.pkg.EVR, choice.pkg.EVR) > 0 {
			choice = &builds[i]
		}
	}
	return choice
}

// obsoletes tells whether one of a package's Obsoletes covers p.
func obsoletes(list []rpm.Obsolete, p NEVRA) bool {
	return slices.ContainsFunc(list, func(o rpm.Obsolete) bool { return o.Covers(p.Name, p.EVR) })
}

// offers says whether dnf offers p from a repository with these
// excludepkgs and includepkgs: not excluded by them or by dnf.conf's
// (req.Exclude, with the user's --exclude), and, where either the
// repository or dnf.conf has includes, matched by one of either (dnf takes
// them together).
func offers(p NEVRA, req Request, exclude, include []string) bool {
	included := len(req.Include) == 0 && len(include) == 0 || Matches(req.Include, p) || Matches(include, p)
	return included && !Matches(req.Exclude, p) && !Matches(exclude, p)
}

// CheckDowngrade is verify.md §2 step 7 (M8): no received package may be
// older than an installed one of the same name and compatible arch (a
// downgrade pulled in through dependencies), unless the user asked for
// --action=downgrade --allow-downgrade.
func (s *FreshnessState) CheckDowngrade(installed []NEVRA, received []ReceivedPackage, req Request) []Finding {
	if req.Action == "downgrade" && req.AllowDowngradeUnsafe {
		return nil
	}
	var findings []Finding
	newest := newestInstalled(installed)
	for _, r := range received {
		for _, inst := range newest {
			if inst.Name == r.Name && compatibleArch(inst.Arch, r.Arch) && rpmver.Compare(inst.EVR, r.EVR) > 0 {
				findings = append(findings, reject(Downgrade, "", r.File,
					"%s: %s is older than the installed %s: refused without --action=downgrade --allow-downgrade",
					r.File, r.NEVRA, inst))
			}
		}
	}
	return findings
}

// CheckArch refuses a received package built for another architecture
// than dom0's machine and not noarch (i686 on x86_64), which dnf takes
// only where nothing else serves: the older-build and withholding checks
// compare builds of one architecture (and noarch), so an UpdateVM
// delivering only an i686 build could replay an older one past them, or
// move a package onto a track whose later updates never come (M4). It is
// accepted where dnf would take it honestly: a package of that name and
// arch is installed, or, on an upgrade, one its Obsoletes replace (dnf
// keeps a multilib package on its architecture; an install of the new name
// takes this machine's build); the verified metadata offers that name for
// other architectures only, and every enabled repository's metadata is
// verified (a 32-bit dependency, or excludepkgs that leave out this
// machine's builds; a repository without signed metadata may offer this
// machine's build unseen); or the user named the arch (hello.i686, *.i686). A build for this machine delivered beside it excuses nothing:
// dnf takes the other one when the UpdateVM holds back what this machine's
// build needs (review, eighteenth session).
func (s *FreshnessState) CheckArch(repos []*VerifiedRepo, allVerified bool, installed []NEVRA, received []ReceivedPackage, req Request, machine string) []Finding {
	ownArch := func(arch string) bool { return arch == machine || arch == "noarch" }
	listed, listedForMachine := map[string]bool{}, map[string]bool{}
	for _, r := range repos {
		for _, p := range r.Packages {
			if offers(p.NEVRA, req, r.Exclude, r.Include) {
				listed[p.Name] = true
				listedForMachine[p.Name] = listedForMachine[p.Name] || ownArch(p.Arch)
			}
		}
	}
	upgrade := req.Action == "upgrade" || req.Action == "update"
	var findings []Finding
	for _, r := range received {
		if ownArch(r.Arch) || namesArch(req.Packages, r.NEVRA) || allVerified && listed[r.Name] && !listedForMachine[r.Name] ||
			slices.ContainsFunc(installed, func(p NEVRA) bool {
				return p.Arch == r.Arch && (p.Name == r.Name || upgrade && obsoletes(r.Obsoletes, p))
			}) {
			continue
		}
		findings = append(findings, reject(OtherArch, "", r.File,
			"%s: %s is built for %s, not for this machine (%s) nor noarch; no %s.%s is installed, and the verified metadata does not offer it for other architectures only: dnf prefers this machine's builds, so this may be a replay of an older build or a switch of architecture by the UpdateVM (M4); to install it on purpose, name it with its arch (%s.%s)",
			r.File, r.NEVRA, r.Arch, machine, r.Name, r.Arch, r.Name, r.Arch))
	}
	return findings
}

// namesArch tells whether a pattern names p by a form with its arch and
// would not match it without (hello.i686, hello-2.0-1.i686, *.i686; not
// hello or hello*): the user asked for that architecture.
func namesArch(patterns []string, p NEVRA) bool {
	forms := versionForms(p) // nv, nvr, nvr.arch, nev, nevr, nevr.arch
	withArch := []string{p.Name + "." + p.Arch, forms[2], forms[5]}
	without := []string{p.Name, forms[0], forms[1], forms[3], forms[4]}
	return slices.ContainsFunc(patterns, func(pattern string) bool {
		return matchesAny(pattern, withArch) && !matchesAny(pattern, without)
	})
}

// newestInstalled keeps, per name and arch, the newest installed version
// (several are installed of kernels), sorted for stable reports.
func newestInstalled(installed []NEVRA) []NEVRA {
	newest := map[[2]string]NEVRA{}
	for _, p := range installed {
		key := [2]string{p.Name, p.Arch}
		if n, ok := newest[key]; !ok || rpmver.Compare(p.EVR, n.EVR) > 0 {
			newest[key] = p
		}
	}
	return slices.SortedFunc(maps.Values(newest), func(a, b NEVRA) int { return strings.Compare(a.Name+"."+a.Arch, b.Name+"."+b.Arch) })
}

// compatibleArch: a package may move between an arch and noarch.
func compatibleArch(a, b string) bool { return a == b || a == "noarch" || b == "noarch" }

// newestBuild is the newest of the listed builds of p's name for an
// architecture compatible with p's (p itself at least), in repositories
// of the given priority or a better one.
func newestBuild(listed []listing, p NEVRA, priority int) NEVRA {
	newest := p
	for _, l := range listed {
		if l.priority <= priority && compatibleArch(p.Arch, l.pkg.Arch) && rpmver.Compare(l.pkg.EVR, newest.EVR) > 0 {
			newest = l.pkg
		}
	}
	return newest
}

// matchesVersion tells whether a pattern names the package with its version
// (name-version and longer forms, with or without the epoch) and not by
// its name alone: the user asked for that very build. A glob such as
// "python3-*" or "*" also matches the bare name, so it asks for no build
// in particular and exempts none from the replay check (M4).
func matchesVersion(patterns []string, p NEVRA) bool {
	return slices.ContainsFunc(patterns, func(pattern string) bool {
		return !matchesAny(pattern, []string{p.Name, p.Name + "." + p.Arch}) && matchesAny(pattern, versionForms(p))
	})
}

// namesBuild tells whether a pattern names builds of the package by their
// version or their arch (hello-1.2, hello-1.*, hello.x86_64), not by its
// name alone: dnf chooses among those (an older x86_64 build for
// hello.x86_64, though a newer noarch one is listed).
func namesBuild(patterns []string, p NEVRA) bool {
	return matchesVersion(patterns, p) || slices.ContainsFunc(patterns, func(pattern string) bool {
		return !matchesAny(pattern, []string{p.Name}) && matchesAny(pattern, []string{p.Name + "." + p.Arch})
	})
}

// fnmatch matches as fnmatch(3) does, as dnf does: "[!a]" is a negated
// class, which path.Match writes "[^a]".
func fnmatch(pattern, name string) (bool, error) {
	return path.Match(strings.ReplaceAll(pattern, "[!", "[^"), name)
}

// Matches tells whether a dnf-style glob matches the package in one of
// the forms dnf accepts: name, name.arch, and the versionForms. (The front
// end asks it too: whether a name the user gave names an installed package,
// or only a provide.)
func Matches(patterns []string, p NEVRA) bool {
	if len(patterns) == 0 {
		return false // most lists are empty: build no forms
	}
	forms := append([]string{p.Name, p.Name + "." + p.Arch}, versionForms(p)...)
	return slices.ContainsFunc(patterns, func(pattern string) bool { return matchesAny(pattern, forms) })
}

// versionForms are the forms dnf accepts that name a version:
// name-version, name-version-release, name-version-release.arch, and
// those with the epoch, 0 included (name-0:version-release).
func versionForms(p NEVRA) []string {
	nv := p.Name + "-" + p.EVR.Version
	nvr := nv + "-" + p.EVR.Release
	nev := fmt.Sprintf("%s-%d:%s", p.Name, p.EVR.Epoch, p.EVR.Version)
	nevr := nev + "-" + p.EVR.Release
	return []string{nv, nvr, nvr + "." + p.Arch, nev, nevr, nevr + "." + p.Arch}
}

func matchesAny(pattern string, forms []string) bool {
	return slices.ContainsFunc(forms, func(form string) bool {
		ok, _ := fnmatch(pattern, form)
		return ok
	})
}
