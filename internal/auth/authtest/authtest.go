// Package authtest is a throwaway identity provider for tests: it signs
// JWTs and writes its public key set where auth.jwksFile can read it.
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/artifactstate/artifactstate/internal/config"
)

// Issuer and Audience of every token an IdP signs.
const (
	Issuer   = "https://idp.test"
	Audience = "artifactstate"
)

// IdP signs tokens with one key.
type IdP struct {
	t   testing.TB
	key *ecdsa.PrivateKey
	kid string
	// JWKSFile holds the public key set.
	JWKSFile string
}

// New makes an IdP; its key set is written to the test's temp dir.
func New(t testing.TB) *IdP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp := &IdP{t: t, key: key, kid: "test-key"}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: idp.kid, ALG: jwkset.AlgES256}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	idp.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(idp.JWKSFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return idp
}

// Config is auth on, trusting this IdP.
func (idp *IdP) Config() config.Auth {
	cfg := config.Default().Auth
	cfg.Enabled, cfg.JWKSFile, cfg.Issuer, cfg.Audience = true, idp.JWKSFile, Issuer, Audience
	return cfg
}

// Token signs a token for subject with the scopes (space-separated),
// expiring after ttl (negative: already expired).
func (idp *IdP) Token(subject, scopes string, ttl time.Duration) string {
	idp.t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": Issuer, "aud": Audience, "sub": subject,
		"scope": scopes, "iat": now.Add(min(ttl, 0) - time.Minute).Unix(), "exp": now.Add(ttl).Unix()})
	tok.Header["kid"] = idp.kid
	out, err := tok.SignedString(idp.key)
	if err != nil {
		idp.t.Fatal(err)
	}
	return out
}
