package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/artifactstate/artifactstate/dev/internal/bench"
	"github.com/artifactstate/artifactstate/internal/cli"
	"github.com/artifactstate/artifactstate/internal/config"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the design on an embedded Temporal: raw SDK ceiling vs the API, new and hot pairs, worker memory per entity, evicted-query cost",
		Long: `Starts an embedded Temporal server, a worker and the API in this process and measures,
at one concurrency: raw SDK SignalWithStart and QueryWorkflow loops against API writes,
strong reads and (with --cassandra-hosts) eventual reads; a 50/50 mix of raw updates and
queries on random pairs (the design's ceiling) against the same mix through the API; new pairs
written then read at once
(--new-pairs, --new-pairs-concurrency: failed reads and wrong answers counted); one hot pair
under --hot-readers readers and --hot-writers writers for --duration (its history checked for
linearizability); then the cost of a query to an evicted entity by history length, and the
heap a worker spends per cached idle entity.
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
	history := f.String("history-events", "100,1000,2000,4000,10000", "history lengths of the evicted-query phase, comma-separated (empty: skip)")
	sqliteFile := f.String("sqlite-file", "", "keep Temporal in this SQLite file (default: in memory)")
	newPairs := f.Int("new-pairs", 200, "new pairs written then read at once (0: skip)")
	newPairsConcurrency := f.Int("new-pairs-concurrency", 32, "concurrent clients of the new-pairs phase")
	hotReaders := f.Int("hot-readers", 16, "readers of the hot-pair phase (--hot-readers 0 --hot-writers 0: skip)")
	hotWriters := f.Int("hot-writers", 4, "writers of the hot-pair phase")
	creation := f.Bool("creation", false, "measure new workflows: a minimal one (the floor), raw update-with-start of new entities, API writes to new pairs")
	allIndexes := f.Bool("all-visibility-indexes", false, "keep every visibility index of Temporal's SQLite schema (a new store drops the ones nothing here queries by)")
	eager := f.Bool("eager", false, "start the creation floor's minimal workflows eagerly (first task to this process's worker)")
	throughput := f.Bool("throughput", true, "measure the throughput phases on existing pairs (--throughput=false skips them)")
	out := f.String("out", "", "write the results as JSON here")
	cpuProfile := f.String("cpuprofile", "", "write a CPU profile of the whole run here (go tool pprof)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *concurrency < 1 || *pairs < *concurrency || *duration <= 0 {
			return fmt.Errorf("need --concurrency >= 1, --pairs >= --concurrency and a positive --duration")
		}
		historyEvents, err := parseCounts(*history)
		if err != nil {
			return fmt.Errorf("--history-events: %w", err)
		}
		if *newPairs < 0 || *newPairsConcurrency < 1 || *hotReaders < 0 || *hotWriters < 0 {
			return fmt.Errorf("need --new-pairs >= 0, --new-pairs-concurrency >= 1, --hot-readers >= 0 and --hot-writers >= 0")
		}
		o := bench.Options{Duration: *duration, Warmup: *warmup, Concurrency: *concurrency, Pairs: *pairs,
			IdleEntities: *idle, HistoryEvents: historyEvents, DatabaseFile: *sqliteFile,
			NewPairs: *newPairs, NewPairsConcurrency: *newPairsConcurrency, HotReaders: *hotReaders, HotWriters: *hotWriters,
			Creation: *creation, SkipThroughput: !*throughput, Eager: *eager, AllVisibilityIndexes: *allIndexes,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
			Out:    cmd.OutOrStdout()}
		if *hosts != "" {
			o.Cassandra = config.Default().Cassandra
			o.Cassandra.Hosts = cli.SplitList(*hosts)
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

// parseCounts parses "100,1000" (empty: none) into positive integers.
func parseCounts(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", part)
		}
		out = append(out, n)
	}
	return out, nil
}
