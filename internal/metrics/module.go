package metrics

import "go.uber.org/fx"

// BuildInfo identifies the running build; supplied by the command.
type BuildInfo struct{ Version, Commit string }

// Module provides the process's *Metrics.
var Module = fx.Module("metrics",
	fx.Provide(func(b BuildInfo) *Metrics { return New(b.Version, b.Commit) }),
)
