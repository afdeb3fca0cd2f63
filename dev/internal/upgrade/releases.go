// Package upgrade runs releases of artifactstate side by side on one store,
// as a deploy does to live entities: it builds the development binary of a
// release from git (cached per commit), runs its processes (dev, worker)
// on a file store with the production settings (search attributes,
// encrypted payloads, a real Cassandra read model), drives entities of
// every shape through the HTTP API, and checks them afterwards. The upgrade
// and rollback tests and the production-shaped corpus recorder use it.
package upgrade

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ReleasesFile lists the commit that shipped each history version.
const ReleasesFile = "replaytests/releases.txt"

// Release is one shipped history version.
type Release struct {
	HistoryVersion int
	Commit         string
}

// Releases reads ReleasesFile of the repository at repo, oldest first.
func Releases(repo string) ([]Release, error) {
	f, err := os.Open(filepath.Join(repo, ReleasesFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Release
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		v, err := strconv.Atoi(fields[0])
		if len(fields) != 2 || err != nil {
			return nil, fmt.Errorf("%s:%d: want <history version> <commit>, got %q", ReleasesFile, line, text)
		}
		out = append(out, Release{HistoryVersion: v, Commit: fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no release", ReleasesFile)
	}
	return out, nil
}

// Previous is the previous release of the code at repo's HEAD: the newest
// listed release whose commit is an ancestor of HEAD and not HEAD itself.
// headVersion is the history version of the code under test: more than one
// version ahead of that release means a release was not listed.
func Previous(ctx context.Context, repo string, headVersion int) (Release, error) {
	releases, err := Releases(repo)
	if err != nil {
		return Release{}, err
	}
	head, err := git(ctx, repo, "rev-parse", "HEAD")
	if err != nil {
		return Release{}, err
	}
	for i := len(releases) - 1; i >= 0; i-- {
		r := releases[i]
		full, err := git(ctx, repo, "rev-parse", r.Commit+"^{commit}")
		if err != nil {
			return Release{}, fmt.Errorf("%s: release %d names %s, which this clone lacks (a shallow clone?): %w",
				ReleasesFile, r.HistoryVersion, r.Commit, err)
		}
		if full == head {
			continue
		}
		if _, err := git(ctx, repo, "merge-base", "--is-ancestor", full, head); err != nil {
			continue
		}
		if headVersion > r.HistoryVersion+1 {
			return Release{}, fmt.Errorf("the code under test writes history version %d but the newest release in %s is version %d: "+
				"list the commit that shipped version %d", headVersion, ReleasesFile, r.HistoryVersion, r.HistoryVersion+1)
		}
		return r, nil
	}
	return Release{}, errors.New("no release in " + ReleasesFile + " is an ancestor of HEAD")
}

// RepoRoot is the repository holding dir.
func RepoRoot(ctx context.Context, dir string) (string, error) {
	return git(ctx, dir, "rev-parse", "--show-toplevel")
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(exit.Stderr)))
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
