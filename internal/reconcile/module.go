package reconcile

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
)

// Module runs the reconciler beside a worker, every
// worker.reconcileInterval (0: never).
var Module = fx.Module("reconcile",
	fx.Invoke(func(lc fx.Lifecycle, c client.Client, temporal config.Temporal, cfg config.Worker, logger *slog.Logger) {
		if cfg.ReconcileInterval == 0 {
			logger.Warn("Reconciler off (worker.reconcileInterval is 0): entities an operator terminates lose their state when their history's retention passes")
			return
		}
		e := entities.New(c, entities.Options{Namespace: temporal.Namespace, TaskQueue: temporal.TaskQueue,
			SearchAttributes: temporal.SearchAttributes}, logger)
		r := New(c, e, temporal.Namespace, cfg.ReconcileInterval, logger.With("component", "reconcile"))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				go func() {
					defer close(done)
					r.Run(ctx)
				}()
				return nil
			},
			OnStop: func(context.Context) error {
				cancel()
				<-done
				return nil
			},
		})
	}),
)
