package upgrade

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Binary is a development binary (the one `make run` starts) of some code.
type Binary struct {
	Path string
	// Name says which code: a short commit, or "work tree".
	Name string
	// NoWorker: its dev role can run without a worker (--no-worker).
	NoWorker bool
	// Versioning: its worker can be a Worker Deployment version
	// (worker.versioning) and it has `release`.
	Versioning bool
}

// BuildCommit builds the development binary of commit, or returns the one
// built before (cached per commit under the user's cache directory: a
// commit never changes). The code comes from git (`git archive`), so the
// clone must hold the commit. It is compiled with the toolchain running
// this code, which shares the build cache with it (the old commit's own
// go directive only names a minimum).
func BuildCommit(ctx context.Context, repo, commit string) (Binary, error) {
	full, err := git(ctx, repo, "rev-parse", commit+"^{commit}")
	if err != nil {
		return Binary{}, fmt.Errorf("release %s: %w", commit, err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return Binary{}, err
	}
	dir := filepath.Join(cache, "artifactstate", "releases", full)
	bin := filepath.Join(dir, "artifactstate")
	if _, err := os.Stat(bin); err == nil {
		return inspect(ctx, bin, full[:7])
	}
	src, err := os.MkdirTemp("", "artifactstate-release-src-")
	if err != nil {
		return Binary{}, err
	}
	defer os.RemoveAll(src)
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", repo, full, src)
	if out, err := archive.CombinedOutput(); err != nil {
		return Binary{}, fmt.Errorf("extract %s: %w: %s", full, err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binary{}, err
	}
	tmp := bin + ".tmp" + fmt.Sprint(os.Getpid())
	if err := goBuild(ctx, src, tmp, full[:7]); err != nil {
		return Binary{}, err
	}
	if err := os.Rename(tmp, bin); err != nil {
		return Binary{}, err
	}
	return inspect(ctx, bin, full[:7])
}

// BuildWorkTree builds the development binary of the work tree at repo
// (uncommitted changes included) into dir.
func BuildWorkTree(ctx context.Context, repo, dir string) (Binary, error) {
	bin := filepath.Join(dir, "artifactstate")
	if err := goBuild(ctx, repo, bin, ""); err != nil {
		return Binary{}, err
	}
	return inspect(ctx, bin, "work tree")
}

// goBuild builds ./cmd/artifactstate of the development module of the
// source tree src (dev/ since the development module split; the root
// before), with commit stamped as the build's commit when given.
func goBuild(ctx context.Context, src, out, commit string) error {
	module := src
	if _, err := os.Stat(filepath.Join(src, "dev", "go.mod")); err == nil {
		module = filepath.Join(src, "dev")
	}
	args := []string{"build", "-o", out}
	if commit != "" {
		args = append(args, "-ldflags", "-X github.com/artifactstate/artifactstate/internal/cli.commit="+commit)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/artifactstate")...)
	cmd.Dir = module
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+runtime.Version())
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s: %w\n%s", module, err, b)
	}
	return nil
}

// inspect reads what the binary can do from its own help.
func inspect(ctx context.Context, bin, name string) (Binary, error) {
	b := Binary{Path: bin, Name: name}
	help, err := exec.CommandContext(ctx, bin, "dev", "--help").CombinedOutput()
	if err != nil {
		return b, fmt.Errorf("%s dev --help: %w: %s", bin, err, help)
	}
	b.NoWorker = bytes.Contains(help, []byte("--no-worker"))
	release, err := exec.CommandContext(ctx, bin, "release", "--help").CombinedOutput()
	b.Versioning = err == nil && strings.Contains(string(release), "promote")
	return b, nil
}
