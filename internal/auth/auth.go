// Package auth authenticates callers (bearer JWTs verified against a JWKS
// URL or a static key set, and static API keys) and authorizes them: a
// caller may read and write only the pairs of its own user ID unless it holds
// a service scope. The rules are transport-neutral (Authenticator.Principal,
// Authorize); Middleware applies them to gin, and a gRPC interceptor can call
// the same functions.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
)

// Scopes with a meaning to the service. A service caller (another backend)
// and an operator may use every user's pairs; only an operator may use the
// admin endpoints (the payload codec).
const (
	ScopeService = "artifactstate:service"
	ScopeAdmin   = "artifactstate:admin"
)

var (
	// ErrUnauthenticated: no credentials, or credentials that do not verify
	// (401).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller is known but may not do this (403).
	ErrForbidden = errors.New("permission denied")
)

// Principal is an authenticated caller.
type Principal struct {
	// Subject is the caller's user ID (or a service's name).
	Subject string
	Scopes  []string
	// Method is how the caller proved who it is: "jwt" or "apikey".
	Method string
	// KeyID names the API key used (never the key itself); empty for JWTs.
	KeyID string
}

// HasAny reports whether the principal holds one of scopes.
func (p Principal) HasAny(scopes ...string) bool {
	return slices.ContainsFunc(scopes, func(s string) bool { return slices.Contains(p.Scopes, s) })
}

// Rules say which scopes lift the own-user-only restriction.
type Rules struct {
	// ServiceScopes may use every user's pairs.
	ServiceScopes []string
	// AdminScopes may use the admin endpoints.
	AdminScopes []string
}

// DefaultRules: artifactstate:service and artifactstate:admin may use every
// user's pairs; artifactstate:admin the admin endpoints.
func DefaultRules() Rules {
	return Rules{ServiceScopes: []string{ScopeService, ScopeAdmin}, AdminScopes: []string{ScopeAdmin}}
}

// Authorize decides whether p may read and write the pairs of userID: its
// own, or anyone's with a service scope. It returns nil or an error wrapping
// ErrForbidden.
func (r Rules) Authorize(p Principal, userID string) error {
	if p.HasAny(r.ServiceScopes...) || (p.Subject != "" && p.Subject == userID) {
		return nil
	}
	return &Error{Err: ErrForbidden, Reason: "this caller may read and write only its own user's pairs; the request names another user"}
}

// AuthorizeAdmin decides whether p may use the admin endpoints.
func (r Rules) AuthorizeAdmin(p Principal) error {
	if p.HasAny(r.AdminScopes...) {
		return nil
	}
	return &Error{Err: ErrForbidden, Reason: "this endpoint needs an admin scope"}
}

// AuthorizeContext is Authorize for the principal in ctx; a context without
// one (a route that skipped authentication) is refused.
func (r Rules) AuthorizeContext(ctx context.Context, userID string) error {
	p, ok := FromContext(ctx)
	if !ok {
		return &Error{Err: ErrUnauthenticated, Reason: "no authenticated caller"}
	}
	return r.Authorize(p, userID)
}

// Error is an authentication or authorization failure with a reason safe to
// show the caller.
type Error struct {
	Err    error // ErrUnauthenticated or ErrForbidden
	Reason string
}

func (e *Error) Error() string { return e.Err.Error() + ": " + e.Reason }
func (e *Error) Unwrap() error { return e.Err }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal WithPrincipal stored.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Module provides the *Authenticator of auth, or nil when auth.enabled is
// false; the JWKS refresher stops with the app.
var Module = fx.Module("auth",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Auth, logger *slog.Logger) (*Authenticator, error) {
		if !cfg.Enabled {
			logger.Warn("Authentication is off (auth.enabled: false): whoever reaches the API may use every user's pairs, " +
				"and whoever reaches the admin listener may decrypt payloads")
			return nil, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		lc.Append(fx.StopHook(cancel))
		a, err := New(ctx, cfg, Options{Logger: logger})
		if err != nil {
			cancel()
			return nil, err
		}
		logger.Info("Authentication on", "jwksURL", cfg.JWKSURL, "jwksFile", cfg.JWKSFile,
			"apiKeysFile", cfg.APIKeysFile, "serviceScopes", cfg.ServiceScopes)
		return a, nil
	}),
)
