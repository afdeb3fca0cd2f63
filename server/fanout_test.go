package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entitiestest"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/workflows"
)

// fanOutServer serves the API on e with the fan-out's limits from cfg.
func fanOutServer(t *testing.T, e pairs.Entities, cfg config.API, tune func(*Deps)) *httptest.Server {
	t.Helper()
	d := Deps{Pairs: pairs.New(e, nil, cfg.RequestTimeout, pairs.WithFanOut(pairs.FanOutLimitsOf(cfg))), Logger: slog.New(slog.DiscardHandler)}
	if tune != nil {
		tune(&d)
	}
	srv := httptest.NewServer(NewHandler(cfg, d))
	t.Cleanup(srv.Close)
	return srv
}

// fanOutBody is a fan-out request body.
func fanOutBody(kind string, userIDs ...string) string {
	ids, _ := json.Marshal(userIDs) // strings always marshal
	return `{"kind":"` + kind + `","userIds":` + string(ids) + `}`
}

const fanOutPath = "/v1/artifacts/7/fanout"

func TestFanOutAnswersEveryItemInOrder(t *testing.T) {
	t.Parallel()
	srv := fanOutServer(t, entitiestest.New(), config.Default().API, nil)
	r := call(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactAddedToUserFeed", "Mike", "Anna/B", "山"))
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, `{"artifactId":7,"kind":"setArtifactAddedToUserFeed","results":[`+
		`{"userId":"Mike","state":{"userId":"Mike","artifactId":7,"artifactRead":false,"artifactInUserFeed":true,"version":1,"consistency":"strong"}},`+
		`{"userId":"Anna/B","state":{"userId":"Anna/B","artifactId":7,"artifactRead":false,"artifactInUserFeed":true,"version":1,"consistency":"strong"}},`+
		`{"userId":"山","state":{"userId":"山","artifactId":7,"artifactRead":false,"artifactInUserFeed":true,"version":1,"consistency":"strong"}}],`+
		`"applied":3,"failed":0}`, stripTimes(r.body))
	require.Contains(t, call(t, "GET", srv.URL+"/v1/users/Anna%2FB/artifacts/7", "").body, `"artifactInUserFeed":true`)

	removed := call(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactRemovedFromUserFeed", "Mike"))
	require.Contains(t, removed.body, `"artifactInUserFeed":false,"version":2`)
}

// A retry with the same Idempotency-Key answers each item's first result
// and applies nothing; the key with another command answers per-item 422s.
func TestFanOutIsIdempotentAsAWhole(t *testing.T) {
	t.Parallel()
	srv := fanOutServer(t, entitiestest.New(), config.Default().API, nil)
	key := map[string]string{"Idempotency-Key": "publish-7"}
	first := callWith(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactAddedToUserFeed", "Mike", "Anna"), key)
	require.Equal(t, 200, first.status, first.body)
	require.Equal(t, 200, callWith(t, "POST", srv.URL+"/v1/users/Anna/artifacts/7/commands", `{"kind":"setArtifactRemovedFromUserFeed"}`, nil).status)
	again := callWith(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactAddedToUserFeed", "Mike", "Anna"), key)
	require.Equal(t, first.body, again.body, "the retry answers the first results")
	require.Contains(t, call(t, "GET", srv.URL+"/v1/users/Anna/artifacts/7", "").body, `"artifactInUserFeed":false,"version":2`,
		"and does not put the artifact back")

	reused := callWith(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactReadByUser", "Mike", "Anna"), key)
	require.Equal(t, 200, reused.status, reused.body)
	var resp struct {
		Results []struct {
			UserID string    `json:"userId"`
			Error  *apiError `json:"error"`
		} `json:"results"`
		Applied, Failed int
	}
	require.NoError(t, json.Unmarshal([]byte(reused.body), &resp))
	require.Equal(t, 0, resp.Applied)
	require.Equal(t, 2, resp.Failed)
	for _, item := range resp.Results {
		require.Equal(t, "idempotency_key_reused", item.Error.Code, item.UserID)
		require.Equal(t, "Idempotency-Key", item.Error.Field)
	}
}

// One pair's failure is that item's error; the others are applied.
func TestFanOutItemErrors(t *testing.T) {
	t.Parallel()
	e := &failOn{Entities: entitiestest.New(), users: map[string]error{
		"Anna": fmt.Errorf("%w: overloaded", entities.ErrUnavailable),
		"Bob":  fmt.Errorf("%w: late", entities.ErrTimeout),
	}}
	srv := fanOutServer(t, e, config.Default().API, nil)
	r := call(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactReadByUser", "Mike", "Anna", "Bob"))
	require.Equal(t, 200, r.status, r.body)
	require.Empty(t, r.header.Get("Retry-After"), "the call did not fail")
	require.Contains(t, r.body, `{"userId":"Anna","error":{"code":"unavailable","error":"the entity store (Temporal) is unavailable or overloaded; retry later"}}`)
	require.Contains(t, r.body, `{"userId":"Bob","error":{"code":"timeout","error":"the entity store (Temporal) did not answer within 5s; `+
		`the command may or may not have been applied: retry it with the same Idempotency-Key"}}`)
	require.Contains(t, r.body, `"applied":1,"failed":2}`)
	require.Equal(t, 1, e.Len())
}

// failOn fails the writes of the users it names.
type failOn struct {
	*entitiestest.Entities
	users map[string]error
}

func (f *failOn) Apply(ctx context.Context, key entityid.Key, cmd entities.Command) (workflows.State, error) {
	if err := f.users[key.UserID]; err != nil {
		return workflows.State{}, err
	}
	return f.Entities.Apply(ctx, key, cmd)
}

func TestFanOutBadInput(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	cfg := config.Default().API
	cfg.MaxFanoutUsers = 3
	srv := fanOutServer(t, e, cfg, nil)
	for _, tc := range []struct {
		path, body string
		header     map[string]string
		field      string
		code       string
	}{
		{fanOutPath, fanOutBody("like", "Mike"), nil, "kind", "invalid_argument"},
		{fanOutPath, `{"kind":"setArtifactReadByUser"}`, nil, "userIds", "invalid_argument"},
		{fanOutPath, fanOutBody("setArtifactReadByUser"), nil, "userIds", "invalid_argument"},
		{fanOutPath, fanOutBody("setArtifactReadByUser", "a", "b", "c", "d"), nil, "userIds", "invalid_argument"},
		{fanOutPath, fanOutBody("setArtifactReadByUser", "a", "b", "a"), nil, "userIds[2]", "invalid_argument"},
		{fanOutPath, fanOutBody("setArtifactReadByUser", "a", ""), nil, "userIds[1]", "invalid_argument"},
		{fanOutPath, fanOutBody("setArtifactReadByUser", "a", "b\u0007"), nil, "userIds[1]", "invalid_argument"},
		{fanOutPath, `{"kind":"setArtifactReadByUser","userIds":[7]}`, nil, "userIds[0]", "invalid_argument"},
		{fanOutPath, `{"kind":"setArtifactReadByUser","userIds":["a","Mi\ud800ke"]}`, nil, "userIds[1]", "invalid_argument"},
		{fanOutPath, `{"kind":"setArtifactReadByUser","userIds":"a"}`, nil, "", "malformed_request"},
		{fanOutPath, `{"kind":"setArtifactReadByUser","userIds":["a"],"ifVersion":1}`, nil, "", "malformed_request"},
		{fanOutPath, ``, nil, "", "malformed_request"},
		{"/v1/artifacts/x/fanout", fanOutBody("setArtifactReadByUser", "a"), nil, "artifactId", "invalid_argument"},
		{fanOutPath, fanOutBody("setArtifactReadByUser", "a"), map[string]string{"Idempotency-Key": "has space"}, "Idempotency-Key", "invalid_argument"},
	} {
		r := callWith(t, "POST", srv.URL+tc.path, tc.body, tc.header)
		require.Equal(t, 400, r.status, "%s: %s", tc.body, r.body)
		require.Contains(t, r.body, `"code":"`+tc.code+`"`, r.body)
		if tc.field != "" {
			require.Contains(t, r.body, `"field":"`+tc.field+`"`, r.body)
			require.Contains(t, r.body, `"error":"`+tc.field+`: `, r.body)
		}
	}
	r := call(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactReadByUser", "a", "b", "a"))
	require.Contains(t, r.body, `"error":"userIds[2]: is user ID 0 again (each user may be named once)"`)
	require.Equal(t, 405, call(t, "GET", srv.URL+fanOutPath, "").status)
	require.Zero(t, e.Len(), "no bad request may reach the entities")
}

// The default body limit takes 1000 user IDs of the longest size even
// with every byte escaped; a larger body gets 413.
func TestFanOutBodyLimit(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	srv := fanOutServer(t, e, config.Default().API, nil)
	ids := make([]string, 1000)
	for i := range ids {
		id := fmt.Sprintf("%04d", i)
		ids[i] = id + strings.Repeat("<", entityid.MaxUserIDBytes-len(id)) // "<" marshals as \u003c
	}
	body := fanOutBody("setArtifactAddedToUserFeed", ids...)
	require.Greater(t, len(body), 1000*6*(entityid.MaxUserIDBytes-4), "escaped")
	r := call(t, "POST", srv.URL+fanOutPath, body)
	require.Equal(t, 200, r.status, "%.300s", r.body)
	require.True(t, strings.HasSuffix(r.body, `"applied":1000,"failed":0}`), "%.300s", r.body[len(r.body)-100:])
	require.Equal(t, 1000, e.Len())

	cfg := config.Default().API
	cfg.MaxFanoutBodyBytes = 1000
	small := fanOutServer(t, entitiestest.New(), cfg, nil)
	r = call(t, "POST", small.URL+fanOutPath, fanOutBody("setArtifactAddedToUserFeed", ids[:10]...))
	require.Equal(t, 413, r.status, r.body)
	require.Contains(t, r.body, "request body is larger than 1000 bytes")
}

// A caller that may not use one of the pairs gets 403, and nothing is
// applied.
func TestFanOutChecksEveryPair(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	var mu sync.Mutex
	var asked []string
	srv := fanOutServer(t, e, config.Default().API, func(d *Deps) {
		d.Authorize = func(_ context.Context, userID string) error {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, userID)
			if userID != "Mike" {
				return &auth.Error{Err: auth.ErrForbidden, Reason: "this caller may read and write only its own user's pairs"}
			}
			return nil
		}
	})
	r := call(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactAddedToUserFeed", "Mike", "Anna", "Bob"))
	require.Equal(t, 403, r.status, r.body)
	require.Contains(t, r.body, `"code":"permission_denied"`)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"Mike", "Anna"}, asked, "asked in order, up to the first refused")
	require.Zero(t, e.Len())
}

// A deadline that passed before the first item fails the whole call with
// 504: nothing was attempted.
func TestFanOutWithNothingAttemptedAnswers504(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	cfg := config.Default().API
	cfg.FanoutTimeout = time.Nanosecond
	srv := fanOutServer(t, e, cfg, nil)
	r := call(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactAddedToUserFeed", "Mike"))
	require.Equal(t, 504, r.status, r.body)
	require.Contains(t, r.body, `"code":"timeout"`)
	require.Contains(t, r.body, "it was not applied")
	require.Zero(t, e.Len())
}

// slowEntities takes delay for every write.
type slowEntities struct {
	*entitiestest.Entities
	delay time.Duration
}

func (s *slowEntities) Apply(ctx context.Context, key entityid.Key, cmd entities.Command) (workflows.State, error) {
	time.Sleep(s.delay)
	return s.Entities.Apply(ctx, key, cmd)
}

// A fan-out may take longer than the server's write timeout: its answer
// is still written.
func TestFanOutOutlivesTheWriteTimeout(t *testing.T) {
	t.Parallel()
	cfg := config.Default().API
	cfg.WriteTimeout = 200 * time.Millisecond
	cfg.FanoutConcurrency = 1
	e := &slowEntities{Entities: entitiestest.New(), delay: 150 * time.Millisecond}
	srv := httptest.NewUnstartedServer(NewHandler(cfg, Deps{Pairs: pairs.New(e, nil, cfg.RequestTimeout, pairs.WithFanOut(pairs.FanOutLimitsOf(cfg))),
		Logger: slog.New(slog.DiscardHandler)}))
	srv.Config.WriteTimeout = cfg.WriteTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	started := time.Now()
	r := call(t, "POST", srv.URL+fanOutPath, fanOutBody("setArtifactAddedToUserFeed", "a", "b", "c"))
	require.Greater(t, time.Since(started), cfg.WriteTimeout)
	require.Equal(t, 200, r.status, r.body)
	require.Contains(t, r.body, `"applied":3,"failed":0}`)
	require.Equal(t, http.StatusOK, call(t, "GET", srv.URL+"/healthz", "").status)
}
