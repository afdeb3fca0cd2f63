package apiguard_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/apiguard"
	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/auth/authtest"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entitiestest"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/server"
)

// api serves the real API handler, guarded as the api role guards it, over
// an in-memory entity store.
func api(t *testing.T, cfg config.API, a *auth.Authenticator) (*httptest.Server, *entitiestest.Entities) {
	t.Helper()
	g := apiguard.New(cfg, a)
	m := entitiestest.New()
	srv := httptest.NewServer(server.NewHandler(cfg, server.Deps{Pairs: pairs.New(m, nil, cfg.RequestTimeout), Middleware: g.Middleware, Authorize: g.Authorize,
		Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	return srv, m
}

type answer struct {
	status int
	header http.Header
	body   string
}

func call(t *testing.T, method, url, token, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func TestEveryRuleOfTheGuardedAPI(t *testing.T) {
	t.Parallel()
	idp := authtest.New(t)
	a, err := auth.New(t.Context(), idp.Config(), auth.Options{})
	require.NoError(t, err)
	srv, m := api(t, config.Default().API, a)

	mike := idp.Token("Mike", "", time.Minute)
	service := idp.Token("feed-service", auth.ScopeService, time.Minute)
	const mikeBody = `{"artifactId":1,"userId":"Mike"}`
	const annaBody = `{"artifactId":1,"userId":"Anna"}`

	cases := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"no token", "POST", "/artifactState/setArtifactReadByUser", "", mikeBody, 401, "unauthenticated"},
		{"no token, v1", "GET", "/v1/users/Mike/artifacts/1", "", "", 401, "unauthenticated"},
		{"expired token", "POST", "/artifactState/setArtifactReadByUser", idp.Token("Mike", "", -time.Minute), mikeBody, 401, "unauthenticated"},
		{"forged token", "POST", "/artifactState/setArtifactReadByUser", authtest.New(t).Token("Mike", auth.ScopeAdmin, time.Minute), mikeBody, 401, "unauthenticated"},
		{"own pair, write", "POST", "/artifactState/setArtifactReadByUser", mike, mikeBody, 200, ""},
		{"own pair, read (GET)", "GET", "/artifactState/isArtifactReadByUser?artifactId=1&userId=Mike", mike, "", 200, ""},
		{"own pair, v1", "GET", "/v1/users/Mike/artifacts/1", mike, "", 200, ""},
		{"another user's pair, write", "POST", "/artifactState/setArtifactReadByUser", mike, annaBody, 403, "permission_denied"},
		{"another user's pair, read (POST)", "POST", "/artifactState/getAllStates", mike, annaBody, 403, "permission_denied"},
		{"another user's pair, read (GET)", "GET", "/artifactState/getAllStates?artifactId=1&userId=Anna", mike, "", 403, "permission_denied"},
		{"another user's pair, v1", "GET", "/v1/users/Anna/artifacts/1", mike, "", 403, "permission_denied"},
		{"another user's feed", "GET", "/v1/users/Anna/feed", mike, "", 403, "permission_denied"},
		{"own feed (no read model here)", "GET", "/v1/users/Mike/feed", mike, "", 503, "read_model_not_configured"},
		{"service, any user, legacy contract", "POST", "/artifactState/setArtifactAddedToUserFeed", service, annaBody, 200, ""},
		{"service, any user, v1", "GET", "/v1/users/Anna/artifacts/1", service, "", 200, ""},
		{"bad input still 400 first", "POST", "/artifactState/setArtifactReadByUser", mike, `{"artifactId":"x","userId":"Anna"}`, 400, "invalid_argument"},
		{"health needs no token", "GET", "/healthz", "", "", 200, ""},
		{"readiness needs no token", "GET", "/readyz", "", "", 200, ""},
		{"OpenAPI needs no token", "GET", "/openapi.yaml", "", "", 200, ""},
		{"no metrics on the API port", "GET", "/metrics", service, "", 404, "not_found"},
		{"no pprof on the API port", "GET", "/debug/pprof/", service, "", 404, "not_found"},
	}
	for _, tc := range cases {
		r := call(t, tc.method, srv.URL+tc.path, tc.token, tc.body)
		require.Equal(t, tc.status, r.status, "%s: %s", tc.name, r.body)
		if tc.code != "" {
			require.Contains(t, r.body, `"code":"`+tc.code+`"`, tc.name)
			require.Equal(t, "application/json", r.header.Get("Content-Type"), tc.name)
		}
		if tc.status == 401 {
			require.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer", tc.name)
		}
	}
	// The service's write for Anna went through; Mike's writes for Anna did not.
	r := call(t, "POST", srv.URL+"/artifactState/getAllStates", service, annaBody)
	require.Equal(t, `{"artifactId":1,"artifactInUserFeed":true,"artifactRead":false,"userId":"Anna"}`, r.body,
		"the original contract's answer, byte for byte, for a service caller")
	require.Equal(t, 2, m.Len())
}

func TestRateLimitsOnTheAPI(t *testing.T) {
	t.Parallel()
	cfg := config.Default().API
	cfg.RateLimit = config.RateLimit{PerClient: 0.001, PerClientBurst: 5}
	srv, _ := api(t, cfg, nil)
	ok, limited := 0, 0
	for range 20 {
		r := call(t, "GET", srv.URL+"/artifactState/isArtifactReadByUser?artifactId=1&userId=Mike", "", "")
		switch r.status {
		case 200:
			ok++
		case 429:
			limited++
			require.Contains(t, r.body, `"code":"rate_limited"`)
			require.NotEmpty(t, r.header.Get("Retry-After"))
		default:
			t.Fatalf("unexpected %d: %s", r.status, r.body)
		}
	}
	require.Equal(t, 5, ok)
	require.Equal(t, 15, limited)
	require.Equal(t, 200, call(t, "GET", srv.URL+"/healthz", "", "").status, "probes are never limited")
}
