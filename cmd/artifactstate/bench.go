package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/internal/bench"
	"github.com/artifactstate/artifactstate/internal/config"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the design on an embedded Temporal: raw SDK ceiling vs the API, worker memory per entity, evicted-query cost",
		Long: `Starts an embedded Temporal server, a worker and the API in this process and measures,
at one concurrency: raw SDK SignalWithStart and QueryWorkflow loops against API writes,
strong reads and (with --cassandra-hosts) eventual reads; then the cost of a query to an
evicted entity by history length, and the heap a worker spends per cached idle entity.
The results and the command line belong in docs/benchmarks.md.`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	duration := f.Duration("duration", 20*time.Second, "length of each measured throughput phase")
	warmup := f.Duration("warmup", 5*time.Second, "unmeasured run before each phase")
	concurrency := f.Int("concurrency", 16, "concurrent callers in every phase")
	pairs := f.Int("pairs", 2000, "entities the throughput phases spread over")
	hosts := f.String("cassandra-hosts", "", "Cassandra for the projection and eventual reads (a fresh keyspace is created)")
	idle := f.Int("idle-entities", 100000, "idle entities cached for the memory phase (0: skip)")
	history := f.IntSlice("history-events", []int{100, 1000, 2000, 4000, 10000}, "history lengths of the evicted-query phase (empty: skip)")
	sqliteFile := f.String("sqlite-file", "", "keep Temporal in this SQLite file (default: in memory)")
	out := f.String("out", "", "write the results as JSON here")
	cpuProfile := f.String("cpuprofile", "", "write a CPU profile of the whole run here (go tool pprof)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *concurrency < 1 || *pairs < *concurrency || *duration <= 0 {
			return fmt.Errorf("need --concurrency >= 1, --pairs >= --concurrency and a positive --duration")
		}
		o := bench.Options{Duration: *duration, Warmup: *warmup, Concurrency: *concurrency, Pairs: *pairs,
			IdleEntities: *idle, HistoryEvents: *history, DatabaseFile: *sqliteFile,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
			Out:    cmd.OutOrStdout()}
		if *hosts != "" {
			o.Cassandra = config.Default().Cassandra
			o.Cassandra.Hosts = splitList(*hosts)
			o.Cassandra.Keyspace = fmt.Sprintf("bench_%x", rand.Uint32())
			o.Cassandra.Consistency = "ONE"
		}
		if *cpuProfile != "" {
			pf, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer pf.Close()
			if err := pprof.StartCPUProfile(pf); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Hour)
		defer cancel()
		res, err := bench.Run(ctx, o)
		if res != nil && *out != "" {
			b, jerr := json.MarshalIndent(res, "", "  ")
			if jerr != nil {
				return jerr
			}
			if werr := os.WriteFile(*out, append(b, '\n'), 0o644); werr != nil {
				return werr
			}
		}
		return err
	}
	return cmd
}
