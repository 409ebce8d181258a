package dom0

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// NetworkReposDir holds dom0's network repository definitions: dom0 never
// uses them itself, it ships them to the UpdateVM (overview.md step 2), and
// reads them to know which repositories a delivery must account for.
const NetworkReposDir = "/etc/yum.repos.d"

// EnabledRepos lists the repository ids enabled in dom0's network
// repository definitions, after the user's --enablerepo and --disablerepo
// globs (applied in that order, as dnf does).
func EnabledRepos(c Config, enable, disable []string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(c.Path(NetworkReposDir), "*.repo"))
	if err != nil {
		return nil, err
	}
	enabled := map[string]bool{}
	for _, file := range files {
		if err := readRepoFile(file, enabled); err != nil {
			return nil, err
		}
	}
	for id := range enabled {
		if matchesAny(id, enable) {
			enabled[id] = true
		}
		if matchesAny(id, disable) {
			enabled[id] = false
		}
	}
	var ids []string
	for id, on := range enabled {
		if on {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// readRepoFile records each section of a .repo file and whether it is
// enabled (dnf's default is enabled).
func readRepoFile(file string, enabled map[string]bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			if section != "main" {
				enabled[section] = true
			}
		case section != "" && section != "main":
			key, value, ok := strings.Cut(line, "=")
			if ok && strings.TrimSpace(key) == "enabled" {
				v := strings.ToLower(strings.TrimSpace(value))
				enabled[section] = v != "0" && v != "false" && v != "no" && v != "off"
			}
		}
	}
	return sc.Err()
}

func matchesAny(id string, globs []string) bool {
	for _, g := range globs {
		for _, part := range strings.Split(g, ",") {
			if ok, _ := path.Match(part, id); ok {
				return true
			}
		}
	}
	return false
}
