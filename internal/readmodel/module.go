package readmodel

import (
	"context"
	"log/slog"

	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/metrics"
)

// Module provides the *Store, or a nil *Store when no Cassandra is
// configured, and closes it on stop.
var Module = fx.Module("readmodel",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Cassandra, logger *slog.Logger, m *metrics.Metrics) *Store {
		if !cfg.Enabled() {
			logger.Warn("No read model: cassandra.hosts is empty, so nothing is projected and the read-model endpoints answer 503")
			return nil
		}
		logger.Info("Read model configured", "hosts", cfg.Hosts, "keyspace", cfg.Keyspace)
		s := NewStore(cfg, logger, m.Cassandra())
		lc.Append(fx.StopHook(func(context.Context) { s.Close() }))
		return s
	}),
)

// MigrateModule applies the schema at start (the dev role does; production
// runs `artifactstate migrate` as a separate step). List it before the
// worker's module so the schema exists before the first projection.
var MigrateModule = fx.Module("readmodel-migrate",
	fx.Invoke(func(lc fx.Lifecycle, cfg config.Cassandra, logger *slog.Logger) {
		if !cfg.Enabled() {
			return
		}
		lc.Append(fx.StartHook(func(ctx context.Context) error { return Migrate(ctx, cfg, logger) }))
	}),
)
