package entities

import (
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
)

// Module provides the *Client on the configured task queue.
var Module = fx.Module("entities",
	fx.Provide(func(c client.Client, cfg config.Config, logger *slog.Logger) *Client {
		return New(c, cfg.Temporal.TaskQueue, logger)
	}),
)
