package pairs

import (
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// Module provides the one *Service both APIs serve, on the entities and
// the read model (none when no Cassandra is configured), bounded by
// api.requestTimeout, its fan-out by the api.*fanout* keys.
var Module = fx.Module("pairs",
	fx.Provide(func(e *entities.Client, store *readmodel.Store, cfg config.API) *Service {
		fanOut := WithFanOut(FanOutLimitsOf(cfg))
		if store == nil { // a nil *Store must not become a non-nil interface
			return New(e, nil, cfg.RequestTimeout, fanOut)
		}
		return New(e, store, cfg.RequestTimeout, fanOut)
	}),
)
