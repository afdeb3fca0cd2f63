// Package bench puts numbers on the design (`artifactstate bench`): on one
// embedded Temporal server, at one concurrency, it measures the raw SDK
// ceiling (SignalWithStart and QueryWorkflow in a plain loop) against the
// HTTP API (writes, strong reads, eventual reads from Cassandra), new pairs
// written then read at once, one hot pair under concurrent readers and
// writers (its history checked for linearizability), then the memory a
// worker spends per cached entity and the cost of a query to an evicted
// entity by history length. docs/benchmarks.md records the results.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/devserver"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/loadtest"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/server"
	"github.com/artifactstate/artifactstate/worker"
)

// Options of a run.
type Options struct {
	// Duration of each throughput phase, after Warmup.
	Duration, Warmup time.Duration
	Concurrency      int
	// Pairs is the number of entities the throughput phases spread over.
	Pairs int
	// Cassandra, when Hosts is set, enables the projection and the
	// eventual-read phase (a fresh keyspace is created).
	Cassandra config.Cassandra
	// IdleEntities cached by the worker for the memory phase (0: skip).
	IdleEntities int
	// HistoryEvents are the history lengths of the evicted-query phase.
	HistoryEvents []int
	// DatabaseFile keeps Temporal on SQLite on disk (empty: in memory).
	DatabaseFile string
	// NewPairs new pairs are written and read back at once by
	// NewPairsConcurrency clients (0: skip).
	NewPairs, NewPairsConcurrency int
	// Creation measures new workflows: a minimal one (the floor), the raw
	// SDK's update-with-start of a new entity and the API's write to a new
	// pair. SkipThroughput skips the throughput phases on existing pairs.
	Creation, SkipThroughput bool
	// Eager starts the minimal workflows of the creation floor eagerly
	// (their first task handed to this process's worker).
	Eager bool
	// AllVisibilityIndexes keeps every visibility index of Temporal's
	// schema (devserver.Options.AllVisibilityIndexes), to measure them.
	AllVisibilityIndexes bool
	// HotReaders and HotWriters work one hot pair for Duration (both 0:
	// skip).
	HotReaders, HotWriters int
	Logger                 *slog.Logger
	Out                    io.Writer // progress lines
}

// env is the system under test, in one process.
type env struct {
	opts   Options
	cfg    config.Config
	srv    *devserver.Server
	client client.Client
	worker *worker.Worker
	api    *http.Server
	apiURL string
	store  *readmodel.Store
}

func (o Options) logf(format string, args ...any) {
	if o.Out != nil {
		fmt.Fprintf(o.Out, format+"\n", args...)
	}
}

func start(ctx context.Context, o Options) (*env, error) {
	// The SDK's sticky cache is one per process and sized when first used:
	// the embedded server's own system workers would size it (10,000) first.
	sdkworker.SetStickyWorkflowCacheSize(max(10000, o.IdleEntities+o.Pairs+1000))
	port, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	srv, err := devserver.New(devserver.Options{IP: "127.0.0.1", FrontendPort: port, Namespaces: []string{"default"},
		DatabaseFile: o.DatabaseFile, Logger: o.Logger, LogLevel: slog.LevelError, AllVisibilityIndexes: o.AllVisibilityIndexes,
		// Long histories for the evicted-query phase (the default suggests
		// continue-as-new at 4096 events).
		DynamicConfig: map[string]any{"limit.historyCount.suggestContinueAsNew": 40000}})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	e := &env{opts: o, srv: srv}
	e.cfg = config.Default()
	e.cfg.Temporal.Address = srv.FrontendAddress()
	e.cfg.Temporal.Compression = "none"
	e.cfg.Cassandra = o.Cassandra
	e.cfg.API.RequestTimeout = 30 * time.Second
	e.cfg.Worker.StickyCacheSize = max(10000, o.IdleEntities+o.Pairs+1000)
	if e.client, err = temporalclient.New(e.cfg.Temporal, o.Logger, temporalclient.Options{Identity: "bench"}); err != nil {
		return nil, errors.Join(err, e.stop())
	}
	var projection *activities.Projection
	var rm pairs.ReadModel
	if o.Cassandra.Enabled() {
		if err := readmodel.Migrate(ctx, o.Cassandra, o.Logger); err != nil {
			return nil, errors.Join(err, e.stop())
		}
		e.store = readmodel.NewStore(o.Cassandra, o.Logger, nil)
		projection = activities.NewProjection(e.store, nil)
		rm = e.store
	}
	e.worker = worker.New(e.client, worker.SettingsOf(e.cfg), projection)
	if err := e.worker.Start(); err != nil {
		return nil, errors.Join(err, e.stop())
	}
	if _, err := e.worker.Promote(ctx, e.client, o.Logger); err != nil { // versioned, as production
		return nil, errors.Join(err, e.stop())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.Join(err, e.stop())
	}
	e.apiURL = "http://" + ln.Addr().String()
	entityClient := entities.New(e.client, entities.Options{Namespace: e.cfg.Temporal.Namespace, TaskQueue: e.cfg.Temporal.TaskQueue}, o.Logger)
	e.api = &http.Server{Handler: server.NewHandler(e.cfg.API, server.Deps{
		Pairs: pairs.New(entityClient, rm, e.cfg.API.RequestTimeout, pairs.WithFanOut(pairs.FanOutLimitsOf(e.cfg.API))), Logger: o.Logger})}
	go func() {
		if err := e.api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("bench API server", "error", err)
		}
	}()
	return e, nil
}

func (e *env) stop() error {
	var errs []error
	if e.api != nil {
		errs = append(errs, e.api.Close())
	}
	if e.worker != nil {
		e.worker.Stop()
	}
	if e.store != nil {
		e.store.Close()
	}
	if e.client != nil {
		e.client.Close()
	}
	errs = append(errs, e.srv.Stop())
	return errors.Join(errs...)
}

func userOf(i int) string { return "bench-" + strconv.Itoa(i) }

// Phase is one measured throughput phase.
type Phase struct {
	Name       string  `json:"name"`
	Throughput float64 `json:"throughputPerSec"`
	P50        float64 `json:"p50Ms"`
	P99        float64 `json:"p99Ms"`
	Errors     int     `json:"errors"`
	Count      int     `json:"count"`
}

func phaseOf(name string, r *loadtest.Report) Phase {
	return callPhase(name, r.Total)
}

// callPhase is one call's figures as a phase.
func callPhase(name string, c loadtest.CallStats) Phase {
	return Phase{Name: name, Throughput: c.Throughput, P50: c.Latency.P50, P99: c.Latency.P99, Errors: c.Errors, Count: c.Count}
}
