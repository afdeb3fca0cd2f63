// Package worker runs the entity workflows (and their activities) on the
// configured task queue. Any number of worker processes may poll the same
// queue: Temporal spreads the entities over them and moves an entity to
// another worker when its worker dies.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/internal/buildid"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/projection"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/release"
	"github.com/artifactstate/artifactstate/workflows"
)

// RegisterWorkflows registers the workflows alone. Replayers use it too, so
// replay tests check exactly the code production runs.
func RegisterWorkflows(r sdkworker.WorkflowRegistry, opts workflows.Options) {
	r.RegisterWorkflowWithOptions(workflows.NewEntity(opts).Run, workflow.RegisterOptions{Name: workflows.EntityWorkflowName})
}

// RegisterProjection registers the projection activity (run locally by the
// entities, and as a regular activity by the projection queue's worker).
func RegisterProjection(r sdkworker.ActivityRegistry, p *activities.Projection) {
	r.RegisterActivityWithOptions(p.ProjectState, activity.RegisterOptions{Name: projection.Name})
}

// ProjectionTaskQueue is the queue of the regular projection activity: only
// workers with a read model poll it, so a fleet where some workers have
// none never hands them a projection.
func ProjectionTaskQueue(entityQueue string) string { return entityQueue + "-projection" }

// Settings are the sections of the configuration a worker reads: its own,
// the entities' task queue (temporal) and the projection's tuning
// (cassandra.projection). In an fx app they are filled from the supplied
// sections.
type Settings struct {
	fx.In
	Temporal  config.Temporal
	Worker    config.Worker
	Cassandra config.Cassandra
}

// SettingsOf are the settings of a worker configured by cfg, for programs
// and tests that hold the whole configuration.
func SettingsOf(cfg config.Config) Settings {
	return Settings{Temporal: cfg.Temporal, Worker: cfg.Worker, Cassandra: cfg.Cassandra}
}

// WorkflowOptions are the entity workflow's options from configuration.
func WorkflowOptions(s Settings) workflows.Options {
	p := s.Cassandra.Projection
	return workflows.Options{
		MaxHistoryEvents: s.Worker.MaxHistoryEvents,
		Projection: projection.Options{
			Timeout: p.Timeout, InitialInterval: p.RetryInitialInterval, MaxInterval: p.RetryMaxInterval,
			LocalTimeout: p.LocalTimeout, TaskQueue: ProjectionTaskQueue(s.Temporal.TaskQueue),
			RejectedPause: p.RejectedPause,
		},
	}
}

// Worker is the entity worker and, with a read model, the worker of the
// projection queue.
type Worker struct {
	entities   sdkworker.Worker
	projection sdkworker.Worker // nil without a read model
	versioning config.Versioning
}

// New returns a worker (not started) polling temporal.taskQueue;
// projection nil means no read model.
func New(c client.Client, s Settings, p *activities.Projection) *Worker {
	// The sticky cache is process-wide in the SDK; it must be set before the
	// first worker starts.
	sdkworker.SetStickyWorkflowCacheSize(s.Worker.StickyCacheSize)
	opts := WorkflowOptions(s)
	opts.Project = p != nil
	if s.Worker.Versioning.BuildID == "" {
		s.Worker.Versioning.BuildID = buildid.Of("") // the roles set it; this is for code that builds a worker itself
	}
	deployment := deploymentOptions(s.Worker.Versioning)
	if deployment.UseVersioning {
		// Pinned runs never change build: they record their history version
		// instead of a version marker per change.
		opts.HistoryVersion = workflows.HistoryVersion
	}
	entityOpts := entityOptions(s.Worker)
	entityOpts.DeploymentOptions = deployment
	w := &Worker{entities: sdkworker.New(c, s.Temporal.TaskQueue, entityOpts), versioning: s.Worker.Versioning}
	RegisterWorkflows(w.entities, opts)
	if p == nil {
		return w
	}
	// The entities run the projection as a local activity, and histories
	// of versions 1 and 2 schedule it on the entity queue.
	RegisterProjection(w.entities, p)
	w.projection = sdkworker.New(c, opts.Projection.TaskQueue, sdkworker.Options{
		MaxConcurrentActivityExecutionSize: s.Worker.MaxConcurrentActivities,
		ActivityTaskPollerBehavior:         pollers(s.Worker, s.Worker.ActivityTaskPollers),
		WorkerStopTimeout:                  s.Worker.StopTimeout,
		DisableWorkflowWorker:              true,
		// The same version as the entities' queue: a pinned run's
		// projections run on its own build, and promoting a version checks
		// that it polls every queue the current one polls.
		DeploymentOptions: deployment,
	})
	RegisterProjection(w.projection, p)
	return w
}

func entityOptions(cfg config.Worker) sdkworker.Options {
	return sdkworker.Options{
		WorkflowTaskPollerBehavior:              pollers(cfg, cfg.WorkflowTaskPollers),
		ActivityTaskPollerBehavior:              pollers(cfg, cfg.ActivityTaskPollers),
		MaxConcurrentWorkflowTaskExecutionSize:  cfg.MaxConcurrentWorkflowTasks,
		MaxConcurrentActivityExecutionSize:      cfg.MaxConcurrentActivities,
		MaxConcurrentLocalActivityExecutionSize: cfg.MaxConcurrentActivities,
		StickyScheduleToStartTimeout:            cfg.StickyScheduleToStartTimeout,
		WorkerStopTimeout:                       cfg.StopTimeout,
	}
}

// deploymentOptions make the worker a version of its Worker Deployment, its
// entity runs pinned (see config.Versioning).
func deploymentOptions(v config.Versioning) sdkworker.DeploymentOptions {
	if !v.Enabled {
		return sdkworker.DeploymentOptions{}
	}
	return sdkworker.DeploymentOptions{
		UseVersioning:             true,
		Version:                   sdkworker.WorkerDeploymentVersion{DeploymentName: v.DeploymentName, BuildID: v.BuildID},
		DefaultVersioningBehavior: workflow.VersioningBehaviorPinned,
	}
}

// minimumPollers is the fewest pollers autoscaling keeps on a queue. A
// query is handed only to a poller already waiting: with the SDK's default
// minimum (1) the pollers followed the queues' backlog down, and cold strong
// reads right after a restart timed out in bursts (3 to 18 × 504 per minute
// at 32 readers); with 16, none in the same runs (docs/benchmarks.md, "Cold
// reads after a restart").
const minimumPollers = 16

// pollers is the poller behavior of one queue; max is the most pollers
// (autoscaling) or their fixed number (simple).
func pollers(cfg config.Worker, max int) sdkworker.PollerBehavior {
	if cfg.PollerBehavior == "simple" {
		return sdkworker.NewPollerBehaviorSimpleMaximum(sdkworker.PollerBehaviorSimpleMaximumOptions{MaximumNumberOfPollers: max})
	}
	return sdkworker.NewPollerBehaviorAutoscaling(sdkworker.PollerBehaviorAutoscalingOptions{
		MaximumNumberOfPollers: max, InitialNumberOfPollers: min(max, minimumPollers), MinimumNumberOfPollers: min(max, minimumPollers),
	})
}

// Start starts polling.
func (w *Worker) Start() error {
	if err := w.entities.Start(); err != nil {
		return err
	}
	if w.projection == nil {
		return nil
	}
	if err := w.projection.Start(); err != nil {
		w.entities.Stop()
		return errors.Join(errors.New("projection queue"), err)
	}
	return nil
}

// Promote makes the worker's build the deployment's current version as
// worker.versioning.promote says, once its pollers registered the version
// (the server refuses a version no worker polled); it reports whether it
// did. An unversioned worker promotes nothing.
func (w *Worker) Promote(ctx context.Context, c client.Client, logger *slog.Logger) (bool, error) {
	v := w.versioning
	if !v.Enabled {
		return false, nil
	}
	promoted, err := release.New(c, v.DeploymentName, logger).Promote(ctx, v.BuildID, v.Promote)
	if err != nil {
		return false, fmt.Errorf("worker.versioning.promote=%s: %w", v.Promote, err)
	}
	return promoted, nil
}

// Stop stops polling and waits for running activities (worker.stopTimeout).
func (w *Worker) Stop() {
	if w.projection != nil {
		w.projection.Stop()
	}
	w.entities.Stop()
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
	fx.Invoke(func(lc fx.Lifecycle, w *Worker, c client.Client, cfg config.Temporal, logger *slog.Logger) {
		lc.Append(fx.Hook{
			OnStart: func(ctx context.Context) error {
				if err := w.Start(); err != nil {
					return fmt.Errorf("start worker on task queue %q at %s: %w", cfg.TaskQueue, cfg.Address, err)
				}
				v := w.versioning
				logger.Info("Worker polling", "taskQueue", cfg.TaskQueue, "namespace", cfg.Namespace,
					"temporal", cfg.Address, "projection", w.projection != nil,
					"versioned", v.Enabled, "deployment", v.DeploymentName, "buildId", v.BuildID)
				promoted, err := w.Promote(ctx, c, logger)
				if err != nil {
					w.Stop()
					return err
				}
				if promoted {
					logger.Info("This build is now the deployment's current version", "deployment", v.DeploymentName, "buildId", v.BuildID)
				}
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
