// Command artifactstate is the one binary of the service; the subcommand
// picks the role: api, worker, or dev (everything in one process).
package main

import (
	"fmt"
	"os"
)

// Set at build time by the Makefile (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "artifactstate:", err)
		os.Exit(1)
	}
}
