// Package cli is the command line of both artifactstate binaries: the
// production one (cmd/artifactstate: api, worker, migrate, loadtest, replay,
// stuck) and the development one (dev/cmd/artifactstate), which adds the
// commands that embed a Temporal server (dev, bench, record-histories).
package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/internal/buildid"
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

// BuildID names this binary's build for Worker Versioning (buildid.Of).
func BuildID() string { return buildid.Of(commit) }
