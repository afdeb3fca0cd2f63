package entities

import (
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
)

// Module provides the *Client for the configured namespace and task queue,
// decoding with the client's converter (payload encryption) and bounded to
// api.maxInFlightTemporalCalls concurrent calls.
var Module = fx.Module("entities",
	fx.Provide(func(c client.Client, temporal config.Temporal, api config.API, logger *slog.Logger, dc converter.DataConverter) *Client {
		opts := OptionsFrom(temporal, api)
		opts.DataConverter = dc
		return New(c, opts, logger)
	}),
)

// OptionsFrom are the Options the configuration asks for (all but the
// DataConverter).
func OptionsFrom(temporal config.Temporal, api config.API) Options {
	return Options{Namespace: temporal.Namespace, TaskQueue: temporal.TaskQueue,
		ReadTimeout: api.RequestTimeout, SearchAttributes: temporal.SearchAttributes,
		MaxInFlight: api.MaxInFlightTemporalCalls, MaxQueued: api.MaxQueuedTemporalCalls}
}
