// Package buildid names a build of the binary for Worker Versioning.
package buildid

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
)

// Of is the build ID of a binary built from commit: the commit when the
// build stamped one, or else (go build, go test) a digest of the running
// executable, so that two different builds never share a build ID.
func Of(commit string) string {
	if commit != "" && commit != "unknown" {
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
