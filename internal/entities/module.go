package entities

import (
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
)

// Module provides the *Client on the configured task queue, decoding
// histories with the client's converter and bounded to
// api.maxInFlightTemporalCalls concurrent operations.
var Module = fx.Module("entities",
	fx.Provide(func(c client.Client, cfg config.Config, logger *slog.Logger, dc converter.DataConverter) *Client {
		return New(c, cfg.Temporal.TaskQueue, logger).WithDataConverter(dc).WithMaxInFlight(cfg.API.MaxInFlightTemporalCalls)
	}),
)
