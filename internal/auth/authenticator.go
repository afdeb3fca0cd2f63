package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/artifactstate/artifactstate/internal/config"
)

// Algorithms accepted in JWTs: asymmetric only, so a key set (which is
// public) can never be used to mint tokens, and "none" is never accepted.
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Authenticator turns credentials into a Principal.
type Authenticator struct {
	cfg     config.Auth
	rules   Rules
	keys    keyfunc.Keyfunc // nil: no JWTs
	apiKeys map[[sha256.Size]byte]apiKey
	parser  *jwt.Parser
}

// Options are the parts tests and callers may replace.
type Options struct {
	// HTTPClient fetches the JWKS URL (default: 10 s timeout, system roots).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// New builds the Authenticator of cfg; ctx bounds the JWKS refresher's
// life. The JWKS URL is fetched once here: an unreachable identity provider
// is logged and retried, not fatal (tokens fail until it answers).
func New(ctx context.Context, cfg config.Auth, o Options) (*Authenticator, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{cfg: cfg, rules: Rules{ServiceScopes: cfg.ServiceScopes, AdminScopes: cfg.AdminScopes}}
	var static json.RawMessage
	if cfg.JWKSFile != "" {
		raw, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwksFile: %w", err)
		}
		static = raw
	}
	switch {
	case cfg.JWKSURL != "":
		client := o.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		override := keyfunc.Override{
			Client: client,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					o.Logger.ErrorContext(ctx, "Cannot refresh the JWT key set", "url", u, "error", err)
				}
			},
		}
		if static != nil {
			storage, err := staticStorage(static)
			if err != nil {
				return nil, err
			}
			override.Given = storage
		}
		k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, override)
		if err != nil {
			return nil, fmt.Errorf("auth.jwksURL: %w", err)
		}
		a.keys = k
	case static != nil:
		k, err := keyfunc.NewJWKSetJSON(static)
		if err != nil {
			return nil, fmt.Errorf("auth.jwksFile %s: %w", cfg.JWKSFile, err)
		}
		a.keys = k
	}
	if cfg.APIKeysFile != "" {
		keys, err := loadAPIKeys(cfg.APIKeysFile)
		if err != nil {
			return nil, err
		}
		a.apiKeys = keys
	}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods(Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.ClockSkew),
	)
	return a, nil
}

// Rules are the authorization rules of this configuration.
func (a *Authenticator) Rules() Rules { return a.rules }

// Credentials are what a request presents: the Authorization header's value
// and the X-API-Key header's (gRPC: the same metadata keys).
type Credentials struct {
	Authorization string
	APIKey        string
}

// Principal verifies the credentials. Errors wrap ErrUnauthenticated and
// say why in words safe to show the caller.
func (a *Authenticator) Principal(ctx context.Context, c Credentials) (Principal, error) {
	if c.APIKey != "" {
		return a.apiKey(c.APIKey)
	}
	if c.Authorization == "" {
		return Principal{}, unauthenticated("no credentials: send Authorization: Bearer <token> or X-API-Key")
	}
	scheme, token, ok := strings.Cut(c.Authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, unauthenticated("the Authorization header must be Bearer <token>")
	}
	token = strings.TrimSpace(token)
	if strings.Count(token, ".") != 2 {
		// Not a JWT: an API key sent as a bearer token.
		return a.apiKey(token)
	}
	return a.jwt(ctx, token)
}

func (a *Authenticator) jwt(ctx context.Context, token string) (Principal, error) {
	if a.keys == nil {
		return Principal{}, unauthenticated("this service accepts no JWTs, only API keys")
	}
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(token, claims, a.keys.KeyfuncCtx(ctx)); err != nil {
		return Principal{}, unauthenticated("the bearer token is not valid: " + reason(err))
	}
	subject, _ := claims[a.cfg.SubjectClaim].(string)
	if subject == "" {
		return Principal{}, unauthenticated(fmt.Sprintf("the bearer token has no %q claim", a.cfg.SubjectClaim))
	}
	return Principal{Subject: subject, Scopes: scopes(claims[a.cfg.ScopeClaim]), Method: "jwt"}, nil
}

// reason is the library's error without the key material it may quote.
func reason(err error) string {
	for _, known := range []error{jwt.ErrTokenExpired, jwt.ErrTokenNotValidYet, jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience, jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return "it cannot be verified"
}

// scopes reads the scope claim: "a b c" (OAuth 2) or ["a", "b"].
func scopes(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, s := range v {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func (a *Authenticator) apiKey(key string) (Principal, error) {
	if a.apiKeys == nil {
		return Principal{}, unauthenticated("this service accepts no API keys")
	}
	k, ok := a.apiKeys[sha256.Sum256([]byte(key))]
	if !ok {
		return Principal{}, unauthenticated("unknown API key")
	}
	return Principal{Subject: k.Subject, Scopes: k.Scopes, Method: "apikey", KeyID: k.ID}, nil
}

func unauthenticated(reason string) error {
	return &Error{Err: ErrUnauthenticated, Reason: reason}
}
