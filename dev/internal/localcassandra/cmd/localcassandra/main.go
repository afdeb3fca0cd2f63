// Command localcassandra fetches, starts and stops a local single-node
// Cassandra for development (see package internal/localcassandra).
//
//	localcassandra fetch
//	localcassandra start  --dir D [--heap 768m] [--timeout 180s]
//	localcassandra stop   --dir D
//	localcassandra status --dir D
//	localcassandra env    --dir D
//
// A run dir keeps its address: start after stop brings the node back on the
// same ports. start and env print ARTIFACTSTATE_CASSANDRA_HOSTS=127.0.0.1:<port> as the
// last stdout line; progress goes to stderr. status exits 3 when no node runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/localcassandra"
)

const usage = `usage: localcassandra <command> [flags]

commands:
  fetch                                         download the Cassandra jars into the cache
  start  --dir D [--heap 768m] [--timeout 180s] start (or reuse) the node in run dir D
  stop   --dir D                                stop the node of run dir D
  status --dir D                                show the node of D (exit 3 if not running)
  env    --dir D                                print ARTIFACTSTATE_CASSANDRA_HOSTS for D
`

// exitNotRunning follows the LSB convention for "program is not running".
const exitNotRunning = 3

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, log, os.Args[1], os.Args[2:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, log *slog.Logger, cmd string, args []string) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	dir := fs.String("dir", "", "run directory (data, logs, config, state)")
	heap := fs.String("heap", "768m", "maximum JVM heap (start)")
	timeout := fs.Duration("timeout", 180*time.Second, "how long to wait for CQL (start)")
	switch cmd {
	case "fetch", "start", "stop", "status", "env":
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "localcassandra: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "localcassandra %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}
	if cmd != "fetch" && *dir == "" {
		fmt.Fprintf(os.Stderr, "localcassandra %s: --dir is required\n", cmd)
		return 2
	}

	var err error
	switch cmd {
	case "fetch":
		var lib string
		if lib, err = localcassandra.Fetch(ctx, localcassandra.Options{Logger: log}); err == nil {
			fmt.Println(lib)
		}
	case "start":
		began := time.Now()
		var n *localcassandra.Node
		n, err = localcassandra.Start(ctx, localcassandra.Options{
			RunDir: *dir, HeapMax: *heap, StartTimeout: *timeout, Logger: log,
		})
		if err == nil {
			log.Info("started", "pid", n.PID, "dir", n.RunDir, "seconds", time.Since(began).Round(100*time.Millisecond).Seconds())
			printHosts(n)
		}
	case "stop":
		began := time.Now()
		err = localcassandra.StopDir(ctx, *dir)
		switch {
		case errors.Is(err, localcassandra.ErrNotRunning):
			log.Info("no node running", "dir", *dir)
			err = nil
		case err == nil:
			log.Info("stopped", "dir", *dir, "seconds", time.Since(began).Round(100*time.Millisecond).Seconds())
		}
	case "status", "env":
		var n *localcassandra.Node
		n, err = localcassandra.Lookup(ctx, *dir)
		if errors.Is(err, localcassandra.ErrNotRunning) {
			fmt.Fprintf(os.Stderr, "localcassandra: no node running in %s\n", *dir)
			return exitNotRunning
		}
		if err == nil && cmd == "status" {
			fmt.Printf("running pid=%d version=%s cql=%s storage_port=%d dir=%s\n",
				n.PID, n.Version, n.CQLAddress(), n.StoragePort, n.RunDir)
		}
		if err == nil && cmd == "env" {
			printHosts(n)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // library errors carry the "localcassandra:" prefix
		return 1
	}
	return 0
}

func printHosts(n *localcassandra.Node) {
	fmt.Printf("ARTIFACTSTATE_CASSANDRA_HOSTS=%s\n", n.CQLAddress())
}
