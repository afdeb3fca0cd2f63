// Package cli is the command line of both artifactstate binaries: the
// production one (cmd/artifactstate: api, worker, migrate, loadtest, replay,
// stuck) and the development one (dev/cmd/artifactstate), which adds the
// commands that embed a Temporal server (dev, bench, record-histories).
package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Set at build time by the Makefile (-ldflags -X .../internal/cli.version=...).
var (
	version = "dev"
	commit  = "unknown"
)

// Main runs the command line of NewRoot(extra...) and exits non-zero on error.
func Main(extra ...*cobra.Command) {
	if err := NewRoot(extra...).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "artifactstate:", err)
		os.Exit(1)
	}
}

// BuildID names this binary's build for Worker Versioning: the commit it was
// built from, or, for a build without one (go build, go test), a digest of
// the executable, so that two different builds never share a build ID.
func BuildID() string {
	if commit != "unknown" && commit != "" {
		return commit
	}
	exe, err := os.Executable()
	if err != nil {
		return "unknown"
	}
	f, err := os.Open(exe)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unknown"
	}
	return "exe-" + hex.EncodeToString(h.Sum(nil))[:12]
}
