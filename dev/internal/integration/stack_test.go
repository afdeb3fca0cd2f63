package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// stack is Temporal + one worker + the API, all real; with a read model,
// also a Cassandra keyspace and the projection.
type stack struct {
	temporal *testenv.Temporal
	cfg      config.Config
	client   client.Client
	api      *httptest.Server
	store    *readmodel.Store
	lags     *lagRecorder
}

// lagRecorder keeps every projection lag observed.
type lagRecorder struct {
	mu   sync.Mutex
	lags []time.Duration
}

// ProjectionStarted, ProjectionFinished and ProjectionClockAdjusted
// implement activities.Observer.
func (l *lagRecorder) ProjectionStarted() {}

func (l *lagRecorder) ProjectionClockAdjusted() {}

func (l *lagRecorder) ProjectionFinished(result string, _ int32, lag time.Duration) {
	if result != "ok" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lags = append(l.lags, lag)
}

// summary is "n=… p50=… p99=… max=…".
func (l *lagRecorder) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lags) == 0 {
		return "n=0"
	}
	s := slices.Clone(l.lags)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))] }
	return fmt.Sprintf("n=%d p50=%v p90=%v p99=%v max=%v", len(s), q(0.5), q(0.9), q(0.99), s[len(s)-1])
}

// startStackWithReadModel is startStack plus a fresh keyspace on the test
// Cassandra at hosts (testenv.CassandraHosts) and the projection.
func startStackWithReadModel(t *testing.T, hosts []string, tune func(*config.Config)) *stack {
	t.Helper()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	cassandra, store := testenv.ReadModel(t, hosts)
	cfg.Cassandra = cassandra
	if tune != nil {
		tune(&cfg)
	}
	c := testenv.Client(t, cfg, "integration-test")
	lags := &lagRecorder{}
	testenv.StartWorker(t, c, cfg, activities.NewProjection(store, lags))
	return &stack{temporal: tt, cfg: cfg, client: c, api: testenv.StartAPI(t, c, cfg, store), store: store, lags: lags}
}

func startStack(t *testing.T, tune func(*config.Config)) *stack {
	t.Helper()
	return startStackOn(t, testenv.StartTemporal(t, testenv.TemporalOptions{}), tune)
}

func startStackOn(t *testing.T, tt *testenv.Temporal, tune func(*config.Config)) *stack {
	t.Helper()
	cfg := tt.Config()
	if tune != nil {
		tune(&cfg)
	}
	c := testenv.Client(t, cfg, "integration-test")
	testenv.StartWorker(t, c, cfg, nil)
	return &stack{temporal: tt, cfg: cfg, client: c, api: testenv.StartAPI(t, c, cfg, nil)}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (s *stack) post(t testing.TB, path, body string) response {
	t.Helper()
	return do(t, http.MethodPost, s.api.URL+path, body)
}

func (s *stack) get(t testing.TB, path string, artifactID int64, userID string) response {
	t.Helper()
	return do(t, http.MethodGet, s.getURL(path, artifactID, userID), "")
}

func (s *stack) getURL(path string, artifactID int64, userID string) string {
	q := url.Values{"artifactId": {strconv.FormatInt(artifactID, 10)}, "userId": {userID}}
	return s.api.URL + path + "?" + q.Encode()
}

// do sends a request from the test's goroutine; it fails the test if the
// request cannot be sent. Goroutines use try.
func do(t testing.TB, method, url, body string) response {
	t.Helper()
	r, err := try(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try sends a request; safe in any goroutine.
func try(method, url, body string) (response, error) {
	return tryWith(method, url, body, nil)
}

// tryWith is try with request headers.
func tryWith(method, url, body string, header map[string]string) (response, error) {
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// pairBody is the request body of the original API.
func pairBody(artifactID int64, userID string) string {
	u, err := json.Marshal(userID)
	if err != nil {
		panic(err)
	}
	return `{"artifactId":` + strconv.FormatInt(artifactID, 10) + `,"userId":` + string(u) + `}`
}
