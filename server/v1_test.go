package server

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entitiestest"
	"github.com/artifactstate/artifactstate/internal/pairs"
)

func callWith(t *testing.T, method, url, body string, header map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{resp.StatusCode, resp.Header, string(b)}
}

func TestCommandAnswersTheNewStateWithItsETag(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	url := srv.URL + "/v1/users/Mike/artifacts/7/commands"
	r := callWith(t, "POST", url, `{"kind":"setArtifactAddedToUserFeed"}`, nil)
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, `{"userId":"Mike","artifactId":7,"artifactRead":false,"artifactInUserFeed":true,"version":1,"consistency":"strong"}`,
		stripTimes(r.body))
	require.Equal(t, `"1"`, r.header.Get("ETag"))

	g := call(t, "GET", srv.URL+"/v1/users/Mike/artifacts/7", "")
	require.Equal(t, `"1"`, g.header.Get("ETag"), "strong reads carry the version as the ETag")
}

func TestIdempotencyKeyAnswersTheFirstResult(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	url := srv.URL + "/v1/users/Mike/artifacts/7/commands"
	key := map[string]string{"Idempotency-Key": "add-7"}
	first := callWith(t, "POST", url, `{"kind":"setArtifactAddedToUserFeed"}`, key)
	require.Equal(t, 200, first.status)
	require.Equal(t, 200, callWith(t, "POST", url, `{"kind":"setArtifactRemovedFromUserFeed"}`, nil).status)
	again := callWith(t, "POST", url, `{"kind":"setArtifactAddedToUserFeed"}`, key)
	require.Equal(t, first.body, again.body, "the retry answers the first result")
	require.Contains(t, call(t, "GET", srv.URL+"/v1/users/Mike/artifacts/7", "").body, `"artifactInUserFeed":false`,
		"and does not put the artifact back")

	reused := callWith(t, "POST", url, `{"kind":"setArtifactReadByUser"}`, key)
	require.Equal(t, http.StatusUnprocessableEntity, reused.status, reused.body)
	require.Contains(t, reused.body, `"code":"idempotency_key_reused"`)

	// The original contract takes the header too.
	legacy := callWith(t, "POST", srv.URL+"/artifactState/setArtifactReadByUser", `{"artifactId":8,"userId":"Mike"}`,
		map[string]string{"Idempotency-Key": "read-8"})
	require.Equal(t, `{"success":true}`, legacy.body)
}

func TestIfMatchAppliesOnlyAtThatVersion(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	url := srv.URL + "/v1/users/Mike/artifacts/7/commands"
	ok := callWith(t, "POST", url, `{"kind":"setArtifactAddedToUserFeed"}`, map[string]string{"If-Match": `"0"`})
	require.Equal(t, 200, ok.status, ok.body)
	stale := callWith(t, "POST", url, `{"kind":"setArtifactRemovedFromUserFeed"}`, map[string]string{"If-Match": `"0"`})
	require.Equal(t, http.StatusPreconditionFailed, stale.status, stale.body)
	require.Equal(t, `"1"`, stale.header.Get("ETag"))
	require.Contains(t, stale.body, `"code":"precondition_failed"`)
	require.Contains(t, stale.body, `"current":{"userId":"Mike","artifactId":7,"artifactRead":false,"artifactInUserFeed":true,"version":1`)
	require.Contains(t, call(t, "GET", srv.URL+"/v1/users/Mike/artifacts/7", "").body, `"artifactInUserFeed":true`, "nothing applied")
	bare := callWith(t, "POST", url, `{"kind":"setArtifactRemovedFromUserFeed"}`, map[string]string{"If-Match": `1`})
	require.Equal(t, 200, bare.status, "quotes may be left out")
}

func TestV1WriteBadInput(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	url := srv.URL + "/v1/users/Mike/artifacts/7/commands"
	for _, tc := range []struct {
		body   string
		header map[string]string
		field  string
		code   string
	}{
		{`{"kind":"deleteEverything"}`, nil, "kind", "invalid_argument"},
		{`{"kind":"setArtifactReadByUser","extra":1}`, nil, "", "malformed_request"},
		{``, nil, "", "malformed_request"},
		{`{"kind":"setArtifactReadByUser"}`, map[string]string{"If-Match": `W/"1"`}, "If-Match", "invalid_argument"},
		{`{"kind":"setArtifactReadByUser"}`, map[string]string{"If-Match": `"x"`}, "If-Match", "invalid_argument"},
		{`{"kind":"setArtifactReadByUser"}`, map[string]string{"Idempotency-Key": "has space"}, "Idempotency-Key", "invalid_argument"},
		{`{"kind":"setArtifactReadByUser"}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 129)}, "Idempotency-Key", "invalid_argument"},
	} {
		r := callWith(t, "POST", url, tc.body, tc.header)
		require.Equal(t, 400, r.status, "%s %v: %s", tc.body, tc.header, r.body)
		require.Contains(t, r.body, `"code":"`+tc.code+`"`, r.body)
		if tc.field != "" {
			require.Contains(t, r.body, `"field":"`+tc.field+`"`, r.body)
		}
	}
	r := callWith(t, "POST", srv.URL+"/artifactState/setArtifactReadByUser", `{"artifactId":8,"userId":"Mike"}`,
		map[string]string{"Idempotency-Key": ""})
	require.Equal(t, 400, r.status, "an empty key is a mistake: %s", r.body)
}

func TestBatchGet(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	require.Equal(t, 200, callWith(t, "POST", srv.URL+"/v1/users/Mike/artifacts/1/commands", `{"kind":"setArtifactReadByUser"}`, nil).status)
	r := call(t, "POST", srv.URL+"/v1/batch-get", `{"pairs":[{"userId":"Mike","artifactId":1},{"userId":"Ann","artifactId":2}]}`)
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, `{"results":[{"userId":"Mike","artifactId":1,"artifactRead":true,"artifactInUserFeed":false,"version":1,"consistency":"strong"},`+
		`{"userId":"Ann","artifactId":2,"artifactRead":false,"artifactInUserFeed":false,"version":0,"consistency":"strong"}]}`, stripTimes(r.body))

	eventual := call(t, "POST", srv.URL+"/v1/batch-get", `{"consistency":"eventual","pairs":[{"userId":"Mike","artifactId":1}]}`)
	require.Equal(t, 503, eventual.status)
	require.Contains(t, eventual.body, "read_model_not_configured")

	many := `{"pairs":[` + strings.TrimSuffix(strings.Repeat(`{"userId":"u","artifactId":1},`, 101), ",") + `]}`
	for body, field := range map[string]string{
		`{"pairs":[]}`: "pairs",
		many:           "pairs",
		`{"pairs":[{"userId":"u","artifactId":1},{"userId":"u","artifactId":"x"}]}`: "pairs[1].artifactId",
		`{"pairs":[{"userId":"","artifactId":1}]}`:                                  "pairs[0].userId",
		`{"pairs":[{"artifactId":1}]}`:                                              "pairs[0].userId",
		`{"consistency":"maybe","pairs":[{"userId":"u","artifactId":1}]}`:           "consistency",
	} {
		r := call(t, "POST", srv.URL+"/v1/batch-get", body)
		require.Equal(t, 400, r.status, "%.60s: %s", body, r.body)
		require.Contains(t, r.body, `"field":"`+field+`"`, r.body)
	}
}

func TestFeedIncludeBadInput(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	for path, field := range map[string]string{
		"/v1/users/Mike/feed?include=everything":          "include",
		"/v1/users/Mike/feed?include=state&pageSize=101":  "pageSize",
		"/v1/users/Mike/feed?include=state&consistency=x": "consistency",
	} {
		r := call(t, "GET", srv.URL+path, "")
		require.Equal(t, 400, r.status, path)
		require.Contains(t, r.body, `"field":"`+field+`"`, path)
	}
}

// stripTimes drops the change times, which depend on the clock.
func stripTimes(body string) string {
	for _, f := range []string{`,"artifactReadChangedAt":"`, `,"artifactInUserFeedChangedAt":"`} {
		for {
			i := strings.Index(body, f)
			if i < 0 {
				break
			}
			j := strings.Index(body[i+len(f):], `"`)
			body = body[:i] + body[i+len(f)+j+1:]
		}
	}
	return body
}

type brokenBody struct{}

func (brokenBody) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// A body that cannot be read (the client went away mid-request) is not a
// malformed request: it answers 499, not 400.
func TestUnreadableBodyIsNotABadRequest(t *testing.T) {
	t.Parallel()
	h := NewHandler(config.Default().API, Deps{Pairs: pairs.New(entitiestest.New(), nil, 0), Logger: slog.New(slog.DiscardHandler)})
	for _, path := range []string{"/artifactState/setArtifactReadByUser", "/v1/users/Mike/artifacts/1/commands"} {
		req := httptest.NewRequest("POST", path, io.NopCloser(brokenBody{}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, 499, rec.Code, path)
		require.Contains(t, rec.Body.String(), `"code":"client_closed_request"`, path)
	}
}

func TestUnknownCommandKindNamesEveryKind(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	r := callWith(t, "POST", srv.URL+"/v1/users/Mike/artifacts/7/commands", `{"kind":"setArtifactLiked"}`, nil)
	require.Equal(t, 400, r.status)
	require.Equal(t, `{"code":"invalid_argument","error":"kind: must be setArtifactReadByUser, setArtifactAddedToUserFeed or `+
		`setArtifactRemovedFromUserFeed, got \"setArtifactLiked\"","field":"kind"}`, strings.TrimSpace(r.body))
}
