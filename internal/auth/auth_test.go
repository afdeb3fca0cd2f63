package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/config"
)

const (
	issuer   = "https://idp.example"
	audience = "artifactstate"
)

// signer is an identity provider's signing key.
type signer struct {
	kid string
	key *ecdsa.PrivateKey
}

func newSigner(t *testing.T, kid string) signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return signer{kid: kid, key: key}
}

// jwks is the public key set of signers.
func jwks(t *testing.T, signers ...signer) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, s := range signers {
		jwk, err := jwkset.NewJWKFromKey(&s.key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: s.kid, ALG: jwkset.AlgES256}})
		require.NoError(t, err)
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	raw, err := json.Marshal(set)
	require.NoError(t, err)
	return raw
}

func (s signer) sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(s.key)
	require.NoError(t, err)
	return out
}

func claims(sub string, scopes string, exp time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": issuer, "aud": audience, "sub": sub, "scope": scopes,
		"iat": now.Unix(), "exp": now.Add(exp).Unix()}
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func authConfig() config.Auth {
	cfg := config.Default().Auth
	cfg.Enabled = true
	cfg.Issuer = issuer
	cfg.Audience = audience
	return cfg
}

func newStatic(t *testing.T, signers ...signer) *Authenticator {
	t.Helper()
	cfg := authConfig()
	cfg.JWKSFile = writeFile(t, "jwks.json", jwks(t, signers...))
	a, err := New(t.Context(), cfg, Options{})
	require.NoError(t, err)
	return a
}

func bearer(token string) Credentials { return Credentials{Authorization: "Bearer " + token} }

func requireUnauthenticated(t *testing.T, err error, reason string) {
	t.Helper()
	require.ErrorIs(t, err, ErrUnauthenticated)
	require.ErrorContains(t, err, reason)
}

func TestValidTokenMapsClaimsToPrincipal(t *testing.T) {
	t.Parallel()
	idp := newSigner(t, "k1")
	a := newStatic(t, idp)
	p, err := a.Principal(t.Context(), bearer(idp.sign(t, claims("Mike", "read write", time.Minute))))
	require.NoError(t, err)
	require.Equal(t, Principal{Subject: "Mike", Scopes: []string{"read", "write"}, Method: "jwt"}, p)

	// Scopes as a JSON array, subject from another claim.
	cfg := authConfig()
	cfg.JWKSFile = writeFile(t, "jwks.json", jwks(t, idp))
	cfg.SubjectClaim, cfg.ScopeClaim = "uid", "scp"
	a2, err := New(t.Context(), cfg, Options{})
	require.NoError(t, err)
	c := claims("ignored", "", time.Minute)
	c["uid"], c["scp"] = "Anna", []any{"artifactstate:service"}
	p, err = a2.Principal(t.Context(), bearer(idp.sign(t, c)))
	require.NoError(t, err)
	require.Equal(t, "Anna", p.Subject)
	require.True(t, p.HasAny(ScopeService))
}

func TestBadTokensAreRejected(t *testing.T) {
	t.Parallel()
	idp := newSigner(t, "k1")
	forger := newSigner(t, "k1") // same key ID, different key
	a := newStatic(t, idp)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims("Mike", "", time.Minute))
	hs.Header["kid"] = "k1"
	hsToken, err := hs.SignedString([]byte("a shared secret nobody configured"))
	require.NoError(t, err)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims("Mike", ScopeAdmin, time.Minute)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	noExp := claims("Mike", "", time.Minute)
	delete(noExp, "exp")
	noSub := claims("", "", time.Minute)
	future := claims("Mike", "", time.Hour)
	future["nbf"] = time.Now().Add(time.Hour).Unix()
	unknownKid := newSigner(t, "k9")

	cases := map[string]struct {
		token, reason string
	}{
		"forged signature":    {forger.sign(t, claims("Mike", ScopeAdmin, time.Minute)), "signature is invalid"},
		"expired":             {idp.sign(t, claims("Mike", "", -time.Minute)), "token is expired"},
		"not valid yet":       {idp.sign(t, future), "token is not valid yet"},
		"other issuer":        {idp.sign(t, func() jwt.MapClaims { c := claims("Mike", "", time.Minute); c["iss"] = "https://evil"; return c }()), "invalid issuer"},
		"other audience":      {idp.sign(t, func() jwt.MapClaims { c := claims("Mike", "", time.Minute); c["aud"] = "billing"; return c }()), "invalid audience"},
		"no expiry":           {idp.sign(t, noExp), "token is missing required claim"},
		"no subject":          {idp.sign(t, noSub), `no "sub" claim`},
		"alg none":            {none, "not valid"},
		"HMAC with the kid":   {hsToken, "not valid"},
		"unknown key":         {unknownKid.sign(t, claims("Mike", "", time.Minute)), "not valid"},
		"garbage":             {"a.b.c", "token is malformed"},
		"tampered payload":    {tamper(t, idp.sign(t, claims("Mike", "", time.Minute))), "not valid"},
		"API key, none known": {"not-a-jwt", "accepts no API keys"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := a.Principal(t.Context(), bearer(tc.token))
			requireUnauthenticated(t, err, tc.reason)
		})
	}
	_, err = a.Principal(t.Context(), Credentials{})
	requireUnauthenticated(t, err, "no credentials")
	_, err = a.Principal(t.Context(), Credentials{Authorization: "Basic TWlrZTpwdw=="})
	requireUnauthenticated(t, err, "must be Bearer")
}

// tamper changes the payload of a signed token to name another subject,
// keeping the signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.SplitN(token, ".", 3)
	payload := jwt.MapClaims{}
	raw, err := jwt.NewParser().DecodeSegment(parts[1])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &payload))
	payload["sub"], payload["scope"] = "Anna", ScopeAdmin
	raw, err = json.Marshal(payload)
	require.NoError(t, err)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("s3cret-key"))
	cfg := authConfig()
	cfg.Issuer, cfg.Audience = "", ""
	cfg.APIKeysFile = writeFile(t, "keys.yaml", []byte(`keys:
  - id: feed-service
    sha256: `+hex.EncodeToString(sum[:])+`
    subject: feed-service
    scopes: [artifactstate:service]
`))
	a, err := New(t.Context(), cfg, Options{})
	require.NoError(t, err)
	for _, c := range []Credentials{{APIKey: "s3cret-key"}, bearer("s3cret-key")} {
		p, err := a.Principal(t.Context(), c)
		require.NoError(t, err)
		require.Equal(t, Principal{Subject: "feed-service", Scopes: []string{ScopeService}, Method: "apikey", KeyID: "feed-service"}, p)
	}
	_, err = a.Principal(t.Context(), Credentials{APIKey: "s3cret-kez"})
	requireUnauthenticated(t, err, "unknown API key")
	_, err = a.Principal(t.Context(), bearer("x.y.z"))
	requireUnauthenticated(t, err, "accepts no JWTs")

	for name, body := range map[string]string{
		"plain key instead of hash": "keys:\n  - id: a\n    sha256: s3cret-key\n    subject: a\n",
		"no subject":                "keys:\n  - id: a\n    sha256: " + hex.EncodeToString(sum[:]) + "\n",
		"unknown field":             "keys:\n  - id: a\n    key: x\n",
		"empty":                     "keys: []\n",
	} {
		cfg.APIKeysFile = writeFile(t, "bad.yaml", []byte(body))
		_, err := New(t.Context(), cfg, Options{})
		require.Error(t, err, name)
	}
}

func TestAuthorizationRules(t *testing.T) {
	t.Parallel()
	rules := DefaultRules()
	mike := Principal{Subject: "Mike", Method: "jwt"}
	service := Principal{Subject: "feed-service", Scopes: []string{ScopeService}}
	admin := Principal{Subject: "ops", Scopes: []string{ScopeAdmin}}
	require.NoError(t, rules.Authorize(mike, "Mike"), "own pairs")
	require.ErrorIs(t, rules.Authorize(mike, "Anna"), ErrForbidden, "another user's pairs")
	require.ErrorIs(t, rules.Authorize(mike, "mike"), ErrForbidden, "user IDs compare exactly")
	require.ErrorIs(t, rules.Authorize(Principal{}, ""), ErrForbidden, "an empty subject owns nothing")
	require.NoError(t, rules.Authorize(service, "Anna"), "a service uses anyone's pairs")
	require.NoError(t, rules.Authorize(admin, "Anna"))
	require.ErrorIs(t, rules.AuthorizeAdmin(service), ErrForbidden)
	require.NoError(t, rules.AuthorizeAdmin(admin))

	require.NoError(t, rules.AuthorizeContext(WithPrincipal(context.Background(), mike), "Mike"))
	require.ErrorIs(t, rules.AuthorizeContext(context.Background(), "Mike"), ErrUnauthenticated, "no principal: refused")
}

func TestJWKSURLIsFetchedAndRefreshedForANewKey(t *testing.T) {
	t.Parallel()
	k1, k2 := newSigner(t, "k1"), newSigner(t, "k2")
	var current atomic.Value
	current.Store(jwks(t, k1))
	var fetches atomic.Int32
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(current.Load().([]byte))
	}))
	t.Cleanup(idp.Close)
	cfg := authConfig()
	cfg.JWKSURL = idp.URL + "/.well-known/jwks.json"
	a, err := New(t.Context(), cfg, Options{HTTPClient: idp.Client()})
	require.NoError(t, err)
	_, err = a.Principal(t.Context(), bearer(k1.sign(t, claims("Mike", "", time.Minute))))
	require.NoError(t, err)

	// The provider rotates to k2: a token naming the new key makes the
	// verifier fetch the set again.
	current.Store(jwks(t, k1, k2))
	before := fetches.Load()
	_, err = a.Principal(t.Context(), bearer(k2.sign(t, claims("Mike", "", time.Minute))))
	require.NoError(t, err)
	require.Greater(t, fetches.Load(), before)
}

func TestMiddlewareAnswers401InTheAPIErrorShape(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	idp := newSigner(t, "k1")
	a := newStatic(t, idp)
	r := gin.New()
	r.Use(Middleware(a))
	r.GET("/who", func(c *gin.Context) {
		p, _ := FromContext(c.Request.Context())
		c.String(http.StatusOK, p.Subject)
	})
	admin := r.Group("/admin", RequireAdmin(a.Rules()))
	admin.GET("/x", func(c *gin.Context) { c.String(http.StatusOK, "ok") })

	do := func(path, token string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r.ServeHTTP(w, req)
		return w
	}
	w := do("/who", "")
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer")
	require.JSONEq(t, `{"code":"unauthenticated","error":"no credentials: send Authorization: Bearer <token> or X-API-Key"}`, w.Body.String())

	w = do("/who", idp.sign(t, claims("Mike", "", -time.Minute)))
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.JSONEq(t, `{"code":"unauthenticated","error":"the bearer token is not valid: token is expired"}`, w.Body.String())

	w = do("/who", idp.sign(t, claims("Mike", "", time.Minute)))
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "Mike", w.Body.String())

	w = do("/admin/x", idp.sign(t, claims("Mike", ScopeService, time.Minute)))
	require.Equal(t, http.StatusForbidden, w.Code)
	require.JSONEq(t, `{"code":"permission_denied","error":"this endpoint needs an admin scope"}`, w.Body.String())
	w = do("/admin/x", idp.sign(t, claims("ops", ScopeAdmin, time.Minute)))
	require.Equal(t, http.StatusOK, w.Code)
}

func TestErrorsUnwrap(t *testing.T) {
	t.Parallel()
	err := error(&Error{Err: ErrForbidden, Reason: "r"})
	require.True(t, errors.Is(err, ErrForbidden))
	require.Equal(t, "permission denied: r", err.Error())
}
