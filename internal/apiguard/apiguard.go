// Package apiguard puts the API's protections in order in front of its
// routes: the global rate limit (before anything costs CPU), then
// authentication, then the per-client rate limit (keyed by the
// authenticated subject); and says who may use which user's pairs.
package apiguard

import (
	"context"

	"github.com/gin-gonic/gin"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/limits"
)

// Guard is what the API applies.
type Guard struct {
	// Middleware runs, in order, before every API route (not health).
	Middleware []gin.HandlerFunc
	// Authorize says whether the caller in ctx may use userID's pairs; nil
	// when authentication is off.
	Authorize func(ctx context.Context, userID string) error
}

// New builds the guard of cfg; a nil authenticator means auth is off.
func New(cfg config.API, a *auth.Authenticator) *Guard {
	g := &Guard{}
	rl := limits.NewRateLimiter(cfg.RateLimit)
	if cfg.RateLimit.Global > 0 {
		g.Middleware = append(g.Middleware, limits.Global(rl))
	}
	if a != nil {
		g.Middleware = append(g.Middleware, auth.Middleware(a))
		g.Authorize = a.Rules().AuthorizeContext
	}
	if cfg.RateLimit.PerClient > 0 {
		g.Middleware = append(g.Middleware, limits.PerClient(rl))
	}
	return g
}

// Module provides the *Guard.
var Module = fx.Module("apiguard",
	fx.Provide(New),
)
