// Package record regenerates the replay corpus: it runs every scenario the
// entity workflow knows against a real, embedded Temporal server and saves
// the resulting histories (`artifactstate record-histories`).
package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/devserver"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/histories"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/release"
	"github.com/artifactstate/artifactstate/worker"
	"github.com/artifactstate/artifactstate/workflows"
)

// Task queues of the recording, one per worker configuration.
const (
	queueMain        = "record-main"        // projection on, server-decided continue-as-new
	queueBudget      = "record-budget"      // projection on, a budget of 100 events
	queueNoProj      = "record-noproj"      // no read model
	queueBatched     = "record-batched"     // its worker starts after the commands are queued
	queueUnversioned = "record-unversioned" // an unversioned worker (no Worker Versioning), budget 100
	namespace        = "default"
	// The recording's workers are one build of the deployment, as a
	// production fleet is (worker.versioning); the unversioned queue's
	// worker is not part of it.
	deploymentName = "artifactstate"
	buildID        = "record"
)

// Run records every scenario into outDir as
// v<HistoryVersion>-<scenario>[-run<N>].json.gz and returns the files written.
func Run(ctx context.Context, outDir string, logger *slog.Logger) ([]string, error) {
	return RunWith(ctx, outDir, logger, nil)
}

// RunWith is Run with the payloads written through dc (payload encryption);
// nil is the SDK's default converter.
func RunWith(ctx context.Context, outDir string, logger *slog.Logger, dc converter.DataConverter) ([]string, error) {
	port, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	srv, err := devserver.New(devserver.Options{IP: "127.0.0.1", FrontendPort: port, Namespaces: []string{namespace},
		Logger: logger, LogLevel: slog.LevelError})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			logger.Warn("Stop the recording server", "error", err)
		}
	}()
	opts := client.Options{HostPort: srv.FrontendAddress(), Namespace: namespace,
		Logger: sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk"))}
	if dc != nil {
		opts.DataConverter, opts.FailureConverter = dc, payloadcrypt.FailureConverter(dc)
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, err
	}
	defer c.Close()

	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	r := &recorder{c: c, dc: dc, logger: logger, outDir: outDir, writer: &scriptedWriter{plans: map[string]*plan{}}}
	for _, w := range []struct {
		queue  string
		budget int
		noProj bool
	}{
		{queueMain, 0, false},
		{queueBudget, 100, false},
		{queueNoProj, 0, true},
		{queueUnversioned, 100, false},
	} {
		if err := r.startWorker(w.queue, w.budget, w.noProj); err != nil {
			return nil, err
		}
	}
	defer r.stopWorkers()
	if err := release.New(c, deploymentName, logger).SetCurrent(ctx, buildID); err != nil {
		return nil, err
	}
	for _, sc := range scenarios {
		logger.Info("Recording", "scenario", sc.name)
		if err := sc.run(ctx, r, sc.name); err != nil {
			return r.files, fmt.Errorf("scenario %s: %w", sc.name, err)
		}
	}
	return r.files, nil
}

type recorder struct {
	c       client.Client
	dc      converter.DataConverter
	logger  *slog.Logger
	outDir  string
	writer  *scriptedWriter
	workers []*worker.Worker
	files   []string
}

// startWorker starts a worker built exactly as the binary builds it, on
// queue, with a budget of maxHistoryEvents (0: the server decides).
func (r *recorder) startWorker(queue string, maxHistoryEvents int, noProjection bool) error {
	cfg := config.Default()
	cfg.Temporal.TaskQueue = queue
	cfg.Worker.MaxHistoryEvents = maxHistoryEvents
	cfg.Worker.StopTimeout = time.Second
	cfg.Cassandra.Projection.RetryInitialInterval = 100 * time.Millisecond
	cfg.Cassandra.Projection.RetryMaxInterval = time.Second
	cfg.Cassandra.Projection.RejectedPause = time.Second
	cfg.Worker.Versioning = config.Versioning{Enabled: queue != queueUnversioned,
		DeploymentName: deploymentName, BuildID: buildID, Promote: config.PromoteNever}
	var p *activities.Projection
	if !noProjection {
		p = activities.NewProjection(r.writer, nil)
	}
	w := worker.New(r.c, worker.SettingsOf(cfg), p)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on %s: %w", queue, err)
	}
	r.workers = append(r.workers, w)
	return nil
}

func (r *recorder) stopWorkers() {
	for _, w := range r.workers {
		w.Stop()
	}
}

func (r *recorder) entities(queue string) *entities.Client {
	return entities.New(r.c, entities.Options{Namespace: namespace, TaskQueue: queue, DataConverter: r.dc}, r.logger)
}

// apply sends the commands one by one as the API does, each applied before
// the next.
func (r *recorder) apply(ctx context.Context, queue string, key entityid.Key, kinds ...workflows.CommandKind) error {
	e := r.entities(queue)
	for _, k := range kinds {
		if _, err := e.Apply(ctx, key, entities.Command{Kind: k}); err != nil {
			return err
		}
	}
	return nil
}

// signal sends the commands as signals (the write path before history
// version 3, still served), each durably accepted before the next.
func (r *recorder) signal(ctx context.Context, queue string, key entityid.Key, kinds ...workflows.CommandKind) error {
	for _, k := range kinds {
		_, err := r.c.SignalWithStartWorkflow(ctx, key.WorkflowID(), workflows.CommandSignalName, workflows.Command{Kind: k},
			client.StartWorkflowOptions{ID: key.WorkflowID(), TaskQueue: queue}, workflows.EntityWorkflowName,
			workflows.EntityInput{UserID: key.UserID, ArtifactID: key.ArtifactID})
		if err != nil {
			return err
		}
	}
	return nil
}

// settle waits until the entity has no pending workflow task or activity,
// so the saved history ends where a running entity rests.
func (r *recorder) settle(ctx context.Context, key entityid.Key) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		d, err := r.c.DescribeWorkflowExecution(ctx, key.WorkflowID(), "")
		if err != nil {
			return err
		}
		if d.GetPendingWorkflowTask() == nil && len(d.GetPendingActivities()) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not settle within a minute", key)
}

// saveChain saves every run of the entity, oldest first, following the
// continue-as-new links back from the current run.
func (r *recorder) saveChain(ctx context.Context, scenario string, key entityid.Key) error {
	if err := r.settle(ctx, key); err != nil {
		return err
	}
	var runs []*history.History
	runID := ""
	for {
		h, err := r.fetch(ctx, key, runID)
		if err != nil {
			return err
		}
		runs = append(runs, h)
		prev := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if prev == "" {
			break
		}
		runID = prev
	}
	slices.Reverse(runs)
	if len(runs) == 1 {
		return r.save(scenario, runs[0])
	}
	for i, h := range runs {
		if err := r.save(scenario+"-run"+strconv.Itoa(i+1), h); err != nil {
			return err
		}
	}
	return nil
}

func (r *recorder) fetch(ctx context.Context, key entityid.Key, runID string) (*history.History, error) {
	it := r.c.GetWorkflowHistory(ctx, key.WorkflowID(), runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &history.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		h.Events = append(h.Events, ev)
	}
	if len(h.Events) == 0 {
		return nil, fmt.Errorf("empty history for %s run %q", key, runID)
	}
	return h, nil
}

func (r *recorder) save(name string, h *history.History) error {
	path := filepath.Join(r.outDir, fmt.Sprintf("v%d-%s.json.gz", workflows.HistoryVersion, name))
	if err := histories.Save(path, h); err != nil {
		return err
	}
	r.files = append(r.files, path)
	return nil
}

// scriptedWriter is the read model of the recording: per user, it can fail
// the first attempts (retried by Temporal) or reject them (not retried).
type scriptedWriter struct {
	mu    sync.Mutex
	plans map[string]*plan
}

type plan struct {
	unavailable int // attempts to fail with ErrUnavailable
	rejections  int // attempts to fail with ErrRejected
	written     uint64
	writes      int
}

func (w *scriptedWriter) script(user string, p plan) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.plans[user] = &p
}

// Stamp finds no row: every pair of the recording starts afresh.
func (w *scriptedWriter) Stamp(context.Context, string, int64) (readmodel.Stamp, bool, error) {
	return readmodel.Stamp{}, false, nil
}

// Project succeeds, fails or rejects as the pair's plan says.
func (w *scriptedWriter) Project(_ context.Context, proj readmodel.Projection) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	row := proj.Row
	p := w.plans[row.UserID]
	if p == nil {
		p = &plan{}
		w.plans[row.UserID] = p
	}
	switch {
	case p.rejections > 0:
		p.rejections--
		return readmodel.ErrRejected
	case p.unavailable > 0:
		p.unavailable--
		return readmodel.ErrUnavailable
	}
	p.written = max(p.written, row.Version)
	p.writes++
	return nil
}

// wrote reports whether the user's row was written at least once.
func (w *scriptedWriter) wrote(user string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.plans[user]
	return p != nil && p.writes > 0
}

func (w *scriptedWriter) writtenVersion(user string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.plans[user]; p != nil {
		return p.written
	}
	return 0
}

var errTimeout = errors.New("timed out")
