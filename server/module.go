package server

import (
	"log/slog"

	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/apiguard"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/httpserve"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/tracing"
)

// Module serves the API on api.listenAddress for the app's lifetime, with
// the bounds of internal/httpserve and the guard of internal/apiguard. On
// stop it stops accepting connections and waits (up to
// api.shutdownTimeout) for in-flight requests to finish.
var Module = fx.Module("server",
	fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, cfg config.API, p *pairs.Service,
		m *metrics.Metrics, t *tracing.Tracing, g *apiguard.Guard, logger *slog.Logger) error {
		d := Deps{Pairs: p, Metrics: m, Tracing: t.Enabled(), Middleware: g.Middleware, Authorize: g.Authorize, Logger: logger}
		return httpserve.Run(lc, sd, logger, NewHandler(cfg, d), httpserve.APIOptions(cfg),
			"/artifactState/ /v1/ /healthz /readyz /openapi.yaml")
	}),
)
