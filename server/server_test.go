package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entitiestest"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/pairs"
)

func newTestServer(t *testing.T) (*httptest.Server, *entitiestest.Entities) {
	t.Helper()
	m := entitiestest.New()
	cfg := config.Default().API
	cfg.MaxBodyBytes = 1024
	srv := httptest.NewServer(NewHandler(cfg, Deps{Pairs: pairs.New(m, nil, cfg.RequestTimeout), Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	return srv, m
}

type result struct {
	status int
	header http.Header
	body   string
}

func call(t *testing.T, method, url, body string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{resp.StatusCode, resp.Header, string(b)}
}

func TestBadInputGetsA4xxNamingTheProblem(t *testing.T) {
	t.Parallel()
	srv, m := newTestServer(t)
	const write = "/artifactState/setArtifactReadByUser"
	const read = "/artifactState/getAllStates"
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"missing userId", "POST", write, `{"artifactId":1}`, 400, "invalid_argument", "userId"},
		{"empty userId", "POST", write, `{"artifactId":1,"userId":""}`, 400, "invalid_argument", "userId"},
		{"null userId", "POST", write, `{"artifactId":1,"userId":null}`, 400, "invalid_argument", "userId"},
		{"numeric userId", "POST", write, `{"artifactId":1,"userId":42}`, 400, "invalid_argument", "userId"},
		{"oversized userId", "POST", write, `{"artifactId":1,"userId":"` + strings.Repeat("a", entityid.MaxUserIDBytes+1) + `"}`, 400, "invalid_argument", "userId"},
		{"control char in userId", "POST", write, `{"artifactId":1,"userId":"Mi\u0007ke"}`, 400, "invalid_argument", "userId"},
		{"newline in userId", "POST", write, `{"artifactId":1,"userId":"Mike\n"}`, 400, "invalid_argument", "userId"},
		{"invalid UTF-8 in userId", "POST", write, "{\"artifactId\":1,\"userId\":\"Mi\xffke\"}", 400, "invalid_argument", "userId"},
		{"lone surrogate in userId", "POST", write, `{"artifactId":1,"userId":"Mi\ud800ke"}`, 400, "invalid_argument", "userId"},
		{"missing artifactId", "POST", write, `{"userId":"Mike"}`, 400, "invalid_argument", "artifactId"},
		{"string artifactId", "POST", write, `{"artifactId":"1","userId":"Mike"}`, 400, "invalid_argument", "artifactId"},
		{"fractional artifactId", "POST", write, `{"artifactId":1.5,"userId":"Mike"}`, 400, "invalid_argument", "artifactId"},
		{"exponent artifactId", "POST", write, `{"artifactId":1e3,"userId":"Mike"}`, 400, "invalid_argument", "artifactId"},
		{"artifactId too large", "POST", write, `{"artifactId":9223372036854775808,"userId":"Mike"}`, 400, "invalid_argument", "artifactId"},
		{"artifactId too small", "POST", write, `{"artifactId":-9223372036854775809,"userId":"Mike"}`, 400, "invalid_argument", "artifactId"},
		{"null artifactId", "POST", write, `{"artifactId":null,"userId":"Mike"}`, 400, "invalid_argument", "artifactId"},
		{"malformed JSON", "POST", write, `{"artifactId":1,"userId":"Mike"`, 400, "malformed_request", ""},
		{"not an object", "POST", write, `[1,"Mike"]`, 400, "malformed_request", ""},
		{"null body", "POST", write, `null`, 400, "malformed_request", ""},
		{"empty body", "POST", write, ``, 400, "malformed_request", ""},
		{"trailing data", "POST", write, `{"artifactId":1,"userId":"Mike"} {}`, 400, "malformed_request", ""},
		{"body too large", "POST", write, `{"artifactId":1,"userId":"Mike","pad":"` + strings.Repeat("x", 2000) + `"}`, 413, "body_too_large", ""},
		{"GET missing artifactId", "GET", read + "?userId=Mike", "", 400, "invalid_argument", "artifactId"},
		{"GET missing userId", "GET", read + "?artifactId=1", "", 400, "invalid_argument", "userId"},
		{"GET empty userId", "GET", read + "?artifactId=1&userId=", "", 400, "invalid_argument", "userId"},
		{"GET non-integer artifactId", "GET", read + "?artifactId=one&userId=Mike", "", 400, "invalid_argument", "artifactId"},
		{"GET out-of-range artifactId", "GET", read + "?artifactId=99999999999999999999&userId=Mike", "", 400, "invalid_argument", "artifactId"},
		{"GET invalid UTF-8 userId", "GET", read + "?artifactId=1&userId=%FF", "", 400, "invalid_argument", "userId"},
		{"GET control char userId", "GET", read + "?artifactId=1&userId=a%00b", "", 400, "invalid_argument", "userId"},
		{"GET bad escape", "GET", read + "?artifactId=1&userId=%zz", "", 400, "malformed_request", ""},
		{"GET on a command", "GET", write + "?artifactId=1&userId=Mike", "", 405, "method_not_allowed", ""},
		{"DELETE on a read", "DELETE", read, "", 405, "method_not_allowed", ""},
		{"unknown endpoint", "POST", "/artifactState/deleteEverything", `{"artifactId":1,"userId":"Mike"}`, 404, "not_found", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tc.method, srv.URL+tc.path, tc.body)
			require.Equal(t, tc.status, r.status, r.body)
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			require.Contains(t, r.body, `"code":"`+tc.code+`"`)
			if tc.field != "" {
				require.Contains(t, r.body, `"field":"`+tc.field+`"`)
				require.Contains(t, r.body, `"error":"`+tc.field+`: `)
			}
		})
	}
	require.Zero(t, m.Len(), "no bad request may reach the entities")
}

func TestAnswersAreByteCompatible(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	body := `{"artifactId":-3,"userId":"<Łukasz & \"Q\" /\\>"}`
	require.Equal(t, `{"success":true}`, call(t, "POST", srv.URL+"/artifactState/setArtifactAddedToUserFeed", body).body)
	want := `{"answer":true,"artifactId":-3,"userId":"<Łukasz & \"Q\" /\\>"}`
	require.Equal(t, want, call(t, "POST", srv.URL+"/artifactState/isArtifactInUserFeed", body).body)
	require.Equal(t, `{"artifactId":-3,"artifactInUserFeed":true,"artifactRead":false,"userId":"<Łukasz & \"Q\" /\\>"}`,
		call(t, "GET", srv.URL+"/artifactState/getAllStates?artifactId=-3&userId=%3C%C5%81ukasz+%26+%22Q%22+%2F%5C%3E", "").body)
	// Unknown fields are ignored, as the original did.
	require.Equal(t, `{"answer":false,"artifactId":1,"userId":"Mike"}`,
		call(t, "POST", srv.URL+"/artifactState/isArtifactReadByUser", `{"extra":[1,2],"userId":"Mike","artifactId":1}`).body)
}

func TestBackendFailuresMapToStatuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err        error
		status     int
		retryAfter string
		code       string
	}{
		{fmt.Errorf("%w: connection refused", entities.ErrUnavailable), 503, "1", "unavailable"},
		{fmt.Errorf("%w: deadline", entities.ErrTimeout), 504, "", "timeout"},
		{errors.New("boom"), 500, "", "internal"},
	}
	for _, tc := range cases {
		srv, m := newTestServer(t)
		m.FailWith(tc.err)
		for _, r := range []result{
			call(t, "POST", srv.URL+"/artifactState/setArtifactReadByUser", `{"artifactId":1,"userId":"Mike"}`),
			call(t, "GET", srv.URL+"/artifactState/isArtifactReadByUser?artifactId=1&userId=Mike", ""),
		} {
			require.Equal(t, tc.status, r.status, r.body)
			require.Equal(t, tc.retryAfter, r.header.Get("Retry-After"))
			require.Contains(t, r.body, `"code":"`+tc.code+`"`)
			require.NotContains(t, r.body, "success")
		}
	}
}

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	srv, m := newTestServer(t)
	require.Equal(t, 200, call(t, "GET", srv.URL+"/healthz", "").status)
	require.Equal(t, 200, call(t, "GET", srv.URL+"/readyz", "").status)
	m.FailWith(fmt.Errorf("%w: down", entities.ErrUnavailable))
	require.Equal(t, 200, call(t, "GET", srv.URL+"/healthz", "").status)
	r := call(t, "GET", srv.URL+"/readyz", "")
	require.Equal(t, 503, r.status)
	require.Equal(t, "1", r.header.Get("Retry-After"))
}

func TestReadModelEndpointsWithoutReadModelAnswer503(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	for _, path := range []string{"/v1/users/Mike/feed", "/v1/users/Mike/read", "/v1/users/Mike/artifacts/1?consistency=eventual"} {
		r := call(t, "GET", srv.URL+path, "")
		require.Equal(t, 503, r.status, path)
		require.Contains(t, r.body, `"code":"read_model_not_configured"`, path)
		require.Contains(t, r.body, "cassandra.hosts", path)
	}
	// The strong read does not need the read model.
	r := call(t, "GET", srv.URL+"/v1/users/Mike%2FSmith/artifacts/1", "")
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, `{"userId":"Mike/Smith","artifactId":1,"artifactRead":false,"artifactInUserFeed":false,"version":0,"consistency":"strong"}`, r.body)
}

func TestV1BadInput(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	for path, field := range map[string]string{
		"/v1/users/Mike/artifacts/x":                       "artifactId",
		"/v1/users/Mike/artifacts/1?consistency=sometimes": "consistency",
		"/v1/users/Mi%0Ake/artifacts/1":                    "userId",
		"/v1/users/Mi%0Ake/feed":                           "userId",
		"/v1/users/Mike/feed?pageSize=0":                   "pageSize",
	} {
		r := call(t, "GET", srv.URL+path, "")
		require.Equal(t, 400, r.status, path)
		require.Contains(t, r.body, `"field":"`+field+`"`, path)
	}
}

// Every route the router serves is described in openapi.yaml, and the other
// way round.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(OpenAPI, &doc))
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	h := NewHandler(config.Default().API, Deps{Pairs: pairs.New(entitiestest.New(), nil, 0), Metrics: metrics.New("test", "test"), Logger: slog.New(slog.DiscardHandler)}).(*gin.Engine)
	for _, r := range h.Routes() {
		path := regexp.MustCompile(`:(\w+)`).ReplaceAllString(r.Path, "{$1}")
		served[r.Method+" "+path] = true
	}
	for route := range served {
		require.True(t, documented[route], "%s is served but not in openapi.yaml", route)
	}
	for route := range documented {
		require.True(t, served[route], "%s is in openapi.yaml but not served", route)
	}
}
