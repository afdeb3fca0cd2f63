package config

import (
	"net/url"
	"time"
)

// Auth configures who may call the API. Off by default (and in dev); when
// on, every API request needs a bearer JWT or an API key, and a caller may
// use only its own user's pairs unless it holds a service scope.
type Auth struct {
	Enabled bool `yaml:"enabled" env:"ENABLED"`
	// JWKSURL is the identity provider's key set (https), refreshed hourly
	// and when a token names an unknown key.
	JWKSURL string `yaml:"jwksURL" env:"JWKS_URL"`
	// JWKSFile is a static key set (JWKS JSON) instead of, or beside, JWKSURL.
	JWKSFile string `yaml:"jwksFile" env:"JWKS_FILE"`
	// Issuer and Audience every JWT must carry (iss, aud).
	Issuer   string `yaml:"issuer" env:"ISSUER"`
	Audience string `yaml:"audience" env:"AUDIENCE"`
	// SubjectClaim holds the caller's user ID (default sub).
	SubjectClaim string `yaml:"subjectClaim" env:"SUBJECT_CLAIM"`
	// ScopeClaim holds the scopes: a space-separated string or an array
	// (default scope).
	ScopeClaim string `yaml:"scopeClaim" env:"SCOPE_CLAIM"`
	// ClockSkew is the leeway on exp, nbf and iat.
	ClockSkew time.Duration `yaml:"clockSkew" env:"CLOCK_SKEW"`
	// APIKeysFile lists API keys by their SHA-256 (YAML; see the README).
	APIKeysFile string `yaml:"apiKeysFile" env:"API_KEYS_FILE"`
	// ServiceScopes may use every user's pairs (the original /artifactState
	// contract's callers are services).
	ServiceScopes []string `yaml:"serviceScopes" env:"SERVICE_SCOPES" envSeparator:","`
	// AdminScopes may use the admin endpoints (the payload codec).
	AdminScopes []string `yaml:"adminScopes" env:"ADMIN_SCOPES" envSeparator:","`
}

func defaultAuth() Auth {
	return Auth{
		SubjectClaim:  "sub",
		ScopeClaim:    "scope",
		ClockSkew:     30 * time.Second,
		ServiceScopes: []string{"artifactstate:service", "artifactstate:admin"},
		AdminScopes:   []string{"artifactstate:admin"},
	}
}

func (a Auth) check(p *Problems) {
	bad := func(key, format string, args ...any) { p.Add("auth."+key, format, args...) }
	p.file("auth.jwksFile", a.JWKSFile)
	p.file("auth.apiKeysFile", a.APIKeysFile)
	if !a.Enabled {
		return
	}
	if a.JWKSURL == "" && a.JWKSFile == "" && a.APIKeysFile == "" {
		bad("enabled", "needs auth.jwksURL, auth.jwksFile or auth.apiKeysFile")
	}
	if a.JWKSURL != "" {
		if u, err := url.Parse(a.JWKSURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("jwksURL", "must be an https:// URL, got %q", a.JWKSURL)
		}
	}
	if a.JWKSURL != "" || a.JWKSFile != "" {
		if a.Issuer == "" {
			bad("issuer", "is required with JWTs (tokens of other issuers must not be accepted)")
		}
		if a.Audience == "" {
			bad("audience", "is required with JWTs (tokens meant for other services must not be accepted)")
		}
	}
	if a.SubjectClaim == "" {
		bad("subjectClaim", "must not be empty")
	}
	if a.ScopeClaim == "" {
		bad("scopeClaim", "must not be empty")
	}
	if a.ClockSkew < 0 || a.ClockSkew > 5*time.Minute {
		bad("clockSkew", "must be between 0 and 5m, got %v", a.ClockSkew)
	}
}
