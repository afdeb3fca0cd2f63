package localcassandra

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// DefaultVersion is the Cassandra release fetched when Options.Version is empty:
// the newest 5.0.x served by Maven Central when this package was written.
const DefaultVersion = "5.0.9"

// CacheEnv overrides the cache root (default
// ${XDG_CACHE_HOME:-$HOME/.cache}/artifactstate/cassandra). Jars live in
// <root>/<version>/lib.
const CacheEnv = "ARTIFACTSTATE_CASSANDRA_CACHE"

// completeMarker is written into lib/ before it is renamed into place; a lib
// dir without it is a leftover and gets replaced.
const completeMarker = ".artifactstate-complete"

// dependencyPlugin is pinned so the fetch does not depend on Maven's defaults.
const dependencyPlugin = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"

var versionRE = regexp.MustCompile(`^5\.0\.[0-9]+$`)

//go:embed pom.xml.tmpl
var pomText string

var pomTmpl = template.Must(template.New("pom").Parse(pomText))

// Fetch makes sure the runtime jars of the requested Cassandra version are in
// the cache and returns the directory holding them. It is safe to call
// concurrently (a file lock serialises fetches of one version) and after an
// interrupted download (jars are copied into a temp dir that is renamed into
// place only once complete). It needs `mvn` on PATH on a cold cache.
func Fetch(ctx context.Context, opts Options) (string, error) {
	opts = opts.withDefaults()
	if !versionRE.MatchString(opts.Version) {
		return "", fmt.Errorf("localcassandra: unsupported version %q (want 5.0.x)", opts.Version)
	}
	root, err := opts.cacheRoot()
	if err != nil {
		return "", err
	}
	verDir := filepath.Join(root, opts.Version)
	libDir := filepath.Join(verDir, "lib")
	if complete(libDir) {
		return libDir, nil
	}
	if err := os.MkdirAll(verDir, 0o755); err != nil {
		return "", fmt.Errorf("localcassandra: create cache dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(verDir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if complete(libDir) { // another process finished while we waited for the lock
		return libDir, nil
	}

	// Clean up whatever an interrupted earlier attempt left behind.
	if err := os.RemoveAll(libDir); err != nil {
		return "", fmt.Errorf("localcassandra: remove incomplete %s: %w", libDir, err)
	}
	if stale, _ := filepath.Glob(filepath.Join(verDir, "fetch-*")); len(stale) > 0 {
		for _, s := range stale {
			if err := os.RemoveAll(s); err != nil {
				return "", fmt.Errorf("localcassandra: remove stale %s: %w", s, err)
			}
		}
	}

	work, err := os.MkdirTemp(verDir, "fetch-")
	if err != nil {
		return "", fmt.Errorf("localcassandra: create temp dir: %w", err)
	}
	defer os.RemoveAll(work)

	start := time.Now()
	opts.Logger.Info("fetching Cassandra jars with Maven", "version", opts.Version, "cache", verDir)
	tmpLib := filepath.Join(work, "lib")
	if err := runMaven(ctx, opts.Version, work, tmpLib); err != nil {
		return "", err
	}
	jars, _ := filepath.Glob(filepath.Join(tmpLib, "cassandra-all-*.jar"))
	if len(jars) == 0 {
		return "", fmt.Errorf("localcassandra: maven finished but no cassandra-all jar in %s", tmpLib)
	}
	if err := os.WriteFile(filepath.Join(tmpLib, completeMarker), []byte(opts.Version+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("localcassandra: write marker: %w", err)
	}
	if err := os.Rename(tmpLib, libDir); err != nil {
		return "", fmt.Errorf("localcassandra: move jars into place: %w", err)
	}
	opts.Logger.Info("fetched Cassandra jars", "dir", libDir, "seconds", roundSec(time.Since(start)))
	return libDir, nil
}

func complete(libDir string) bool {
	_, err := os.Stat(filepath.Join(libDir, completeMarker))
	return err == nil
}

// runMaven writes the throw-away pom into work and copies the runtime
// dependency closure of cassandra-all into outDir.
func runMaven(ctx context.Context, version, work, outDir string) error {
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return errors.New("localcassandra: `mvn` not found on PATH; it is needed once to download the Cassandra jars")
	}
	var pom bytes.Buffer
	if err := pomTmpl.Execute(&pom, struct{ Version string }{version}); err != nil {
		return fmt.Errorf("localcassandra: render pom: %w", err)
	}
	pomPath := filepath.Join(work, "pom.xml")
	if err := os.WriteFile(pomPath, pom.Bytes(), 0o644); err != nil {
		return fmt.Errorf("localcassandra: write pom: %w", err)
	}
	cmd := exec.CommandContext(ctx, mvn, "-B", "-q", "-f", pomPath, dependencyPlugin,
		"-DoutputDirectory="+outDir, "-DincludeScope=runtime")
	cmd.Dir = work
	// Maven itself needs a JDK it can run on; prefer 17 like the server.
	if home, err := findJava17(""); err == nil {
		cmd.Env = append(os.Environ(), "JAVA_HOME="+home)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("localcassandra: mvn copy-dependencies failed: %w\n%s", err, tail(out, 40))
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling so ctx can abort the wait.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localcassandra: open lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("localcassandra: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("localcassandra: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func roundSec(d time.Duration) float64 {
	return float64(d.Round(100*time.Millisecond)) / float64(time.Second)
}

// discardLogger is the default progress logger.
var discardLogger = slog.New(slog.DiscardHandler)
