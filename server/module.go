package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/tracing"
)

// Module serves the API on api.listenAddress for the app's lifetime. On stop
// it stops accepting connections and waits (up to api.shutdownTimeout) for
// in-flight requests to finish.
var Module = fx.Module("server",
	fx.Provide(func(e *entities.Client) Entities { return e }),
	fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, cfg config.Config, e Entities, store *readmodel.Store,
		m *metrics.Metrics, t *tracing.Tracing, logger *slog.Logger) {
		d := Deps{Entities: e, Metrics: m, Tracing: t.Enabled(), Pprof: cfg.Metrics.Pprof, Logger: logger}
		if store != nil { // a nil *Store must not become a non-nil interface
			d.ReadModel = store
		}
		srv := &http.Server{
			Handler:           NewHandler(cfg.API, d),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		}
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				ln, err := net.Listen("tcp", cfg.API.ListenAddress)
				if err != nil {
					return fmt.Errorf("api.listenAddress %s: %w", cfg.API.ListenAddress, err)
				}
				logger.Info("API listening", "address", "http://"+ln.Addr().String())
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						logger.Error("API server failed", "error", err)
						if err := sd.Shutdown(fx.ExitCode(1)); err != nil {
							logger.Error("Cannot shut down", "error", err)
						}
					}
				}()
				return nil
			},
			OnStop: func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, cfg.API.ShutdownTimeout)
				defer cancel()
				if err := srv.Shutdown(ctx); err != nil {
					return fmt.Errorf("API shutdown: %w", err)
				}
				logger.Info("API stopped")
				return nil
			},
		})
	}),
)
