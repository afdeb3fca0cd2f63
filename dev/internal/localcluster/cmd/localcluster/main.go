// Command localcluster runs the production shape of artifactstate on this
// machine (see package internal/localcluster); scripts/cluster wraps it.
//
//	localcluster up     [--dir .data/cluster]   start what is not running, wait until ready
//	localcluster status [--dir .data/cluster]   every process: pid, address, health
//	localcluster down   [--dir .data/cluster]   stop what up started (data stays)
//	localcluster bench  [--dir .data/cluster]   throughput: cluster with 1, 2, 3 workers vs dev
//	localcluster chaos  [--dir .data/cluster] [--duration 10m]   random faults under load, then the verdict
//
// status exits 3 when a process is not running or not healthy.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/localcluster"
)

const usage = `usage: localcluster <command> [flags]

commands:
  up       start the cluster (what is not running yet) and wait until it is ready
  status   show every process: pid, address, health (exit 3 if one is down or unhealthy)
  down     stop every process the cluster started; data and ports stay in --dir
  bench    closed-model load test: the cluster with 1, 2 and 3 workers, then the all-in-one dev
  chaos    for --duration (default 10m), under the fault test's load, kill, freeze or restart a
           random process of a replicated role, one at a time; then read every acknowledged
           write back, check linearizability and print each fault's failed calls (--out, --seed)

flags (every command):
  --dir DIR   the cluster's directory (default .data/cluster)
`

const exitNotRunning = 3

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1], os.Args[2:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".data/cluster", "the cluster's directory")
	heap := fs.String("heap", "768m", "maximum JVM heap of each Cassandra node (up)")
	noUI := fs.Bool("no-ui", false, "leave the Temporal Web UI out (up)")
	asJSON := fs.Bool("json", false, "print the status as JSON (status)")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up on up after this long")
	var b benchFlags
	b.register(fs)
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed of the faults and the load (chaos)")
	switch cmd {
	case "up", "down", "status", "bench", "chaos":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "localcluster: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "localcluster %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	c, err := localcluster.Open(localcluster.Options{Dir: *dir, NoWebUI: *noUI, CassandraHeap: *heap, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	switch cmd {
	case "up":
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := c.Up(ctx); err != nil {
			fmt.Fprintln(stderr, "localcluster up:", err)
			fmt.Fprintln(stderr, "(what started keeps running: `scripts/cluster status` shows it, `scripts/cluster down` stops it)")
			return 1
		}
		printStatus(stdout, c.Status(ctx))
		printHints(stdout, c)
	case "status":
		st := c.Status(ctx)
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(st); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
		} else {
			printStatus(stdout, st)
		}
		for _, s := range st {
			if s.Health != "ok" {
				return exitNotRunning
			}
		}
	case "down":
		began := time.Now()
		if err := c.Down(ctx); err != nil {
			fmt.Fprintln(stderr, "localcluster down:", err)
			return 1
		}
		log.Info("cluster stopped", "seconds", time.Since(began).Round(100*time.Millisecond).Seconds(), "dir", c.Dir())
	case "bench":
		if err := runBench(ctx, c, b, log, stdout); err != nil {
			fmt.Fprintln(stderr, "localcluster bench:", err)
			return 1
		}
	case "chaos":
		d := 10 * time.Minute
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "duration" {
				d = b.duration
			}
		})
		log.Info("chaos", "duration", d, "seed", *seed)
		if err := runChaos(ctx, c, d, *seed, b.out, log, stdout); err != nil {
			fmt.Fprintln(stderr, "localcluster chaos:", err)
			return 1
		}
	}
	return 0
}

func printStatus(w io.Writer, st []localcluster.ProcessStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tADDRESS\tHEALTH")
	for _, s := range st {
		pid := "-"
		if s.Running {
			pid = fmt.Sprint(s.PID)
		}
		addr := s.Address
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, pid, addr, s.Health)
	}
	_ = tw.Flush()
}

func printHints(w io.Writer, c *localcluster.Cluster) {
	urls := c.APIURLs()
	fmt.Fprintf(w, "\nAPI nodes:          %v\n", urls)
	fmt.Fprintf(w, "Temporal frontend:  %s (namespace %s)\n", c.FrontendAddress(), c.Deployment().Namespace)
	if u := c.UIURL(); u != "" {
		fmt.Fprintf(w, "Temporal Web UI:    %s\n", u)
	}
	fmt.Fprintf(w, "Cassandra:          %s\n", c.CassandraHosts())
	fmt.Fprintf(w, "Logs:               %s/logs, %s/cassandra/node-*/logs\n", c.Dir(), c.Dir())
	fmt.Fprintf(w, "\ncurl -XPOST %s/artifactState/setArtifactReadByUser -H 'Content-Type: application/json' -d '{\"artifactId\":1,\"userId\":\"Mike\"}'\n", urls[0])
}
