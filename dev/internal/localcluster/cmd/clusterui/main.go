// Command clusterui serves the Temporal Web UI (github.com/temporalio/ui-server,
// the version go.mod pins) against a Temporal frontend; scripts/cluster runs
// it for the local cluster.
//
//	clusterui --listen 127.0.0.1:8080 --frontend 127.0.0.1:7233 --namespace artifactstate
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "host:port to serve the UI on")
	frontend := flag.String("frontend", "127.0.0.1:7233", "Temporal frontend host:port")
	namespace := flag.String("namespace", "default", "namespace the UI opens")
	flag.Parse()
	host, portStr, err := net.SplitHostPort(*listen)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		fmt.Fprintf(os.Stderr, "clusterui: --listen %q is not host:port\n", *listen)
		os.Exit(2)
	}
	s := uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                host,
		Port:                port,
		TemporalGRPCAddress: *frontend,
		EnableUI:            true,
		DefaultNamespace:    *namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
	}))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-stop
		s.Stop()
	}()
	if err := s.Start(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "clusterui:", err)
		os.Exit(1)
	}
}
