// Command healthprobe is the container health check of the artifactstate
// image: the distroless runtime has no shell, curl or wget, so docker compose
// runs this instead. It GETs one URL and exits 0 on a 2xx answer, 1 otherwise.
//
//	healthprobe [URL]   (default http://127.0.0.1:8082/readyz)
//
// Kubernetes does not need it: its probes are httpGet probes.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultURL is the api role's readiness endpoint on its default port.
const DefaultURL = "http://127.0.0.1:8082/readyz"

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	url := DefaultURL
	switch len(args) {
	case 0:
	case 1:
		url = args[0]
	default:
		fmt.Fprintln(stderr, "usage: healthprobe [URL]")
		return 2
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(stderr, "healthprobe:", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "healthprobe: GET %s: %s\n", url, resp.Status)
		return 1
	}
	return 0
}
