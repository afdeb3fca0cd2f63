// Package worker runs the entity workflows (and their activities) on the
// configured task queue. Any number of worker processes may poll the same
// queue: Temporal spreads the entities over them and moves an entity to
// another worker when its worker dies.
package worker

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/workflows"
)

// Register registers everything a worker runs; projection nil means no read
// model.
func Register(r sdkworker.Registry, opts workflows.Options, projection *activities.Projection) {
	opts.Project = projection != nil
	RegisterWorkflows(r, opts)
	if projection != nil {
		r.RegisterActivityWithOptions(projection.ProjectState, activity.RegisterOptions{Name: activities.ProjectStateName})
	}
}

// RegisterWorkflows registers the workflows alone. Replayers use it too, so
// replay tests check exactly the code production runs.
func RegisterWorkflows(r sdkworker.WorkflowRegistry, opts workflows.Options) {
	r.RegisterWorkflowWithOptions(workflows.NewEntity(opts).Run, workflow.RegisterOptions{Name: workflows.EntityWorkflowName})
}

// WorkflowOptions are the entity workflow's options from configuration.
func WorkflowOptions(cfg config.Config) workflows.Options {
	p := cfg.Cassandra.Projection
	return workflows.Options{
		MaxHistoryEvents: cfg.Worker.MaxHistoryEvents,
		Projection: activities.RetryOptions{
			Timeout: p.Timeout, InitialInterval: p.RetryInitialInterval, MaxInterval: p.RetryMaxInterval,
		},
	}
}

// New returns a worker (not started) polling cfg.Temporal.TaskQueue;
// projection nil means no read model.
func New(c client.Client, cfg config.Config, projection *activities.Projection) sdkworker.Worker {
	// The sticky cache is process-wide in the SDK; it must be set before the
	// first worker starts.
	sdkworker.SetStickyWorkflowCacheSize(cfg.Worker.StickyCacheSize)
	w := sdkworker.New(c, cfg.Temporal.TaskQueue, sdkworker.Options{
		MaxConcurrentWorkflowTaskPollers:       cfg.Worker.WorkflowTaskPollers,
		MaxConcurrentActivityTaskPollers:       cfg.Worker.ActivityTaskPollers,
		MaxConcurrentWorkflowTaskExecutionSize: cfg.Worker.MaxConcurrentWorkflowTasks,
		MaxConcurrentActivityExecutionSize:     cfg.Worker.MaxConcurrentActivities,
		WorkerStopTimeout:                      cfg.Worker.StopTimeout,
	})
	Register(w, WorkflowOptions(cfg), projection)
	return w
}

// Module starts the worker with the app and stops it (waiting for running
// activities up to worker.stopTimeout) when the app stops.
var Module = fx.Module("worker",
	fx.Provide(
		func(store *readmodel.Store, m *metrics.Metrics) *activities.Projection {
			if store == nil {
				return nil
			}
			return activities.NewProjection(store, m)
		},
		New,
	),
	fx.Invoke(func(lc fx.Lifecycle, w sdkworker.Worker, cfg config.Config, logger *slog.Logger) {
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				if err := w.Start(); err != nil {
					return fmt.Errorf("start worker on task queue %q at %s: %w", cfg.Temporal.TaskQueue, cfg.Temporal.Address, err)
				}
				logger.Info("Worker polling", "taskQueue", cfg.Temporal.TaskQueue, "namespace", cfg.Temporal.Namespace,
					"temporal", cfg.Temporal.Address)
				return nil
			},
			OnStop: func(context.Context) error {
				w.Stop()
				logger.Info("Worker stopped")
				return nil
			},
		})
	}),
)
