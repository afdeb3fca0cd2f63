package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/testenv"
)

// stack is Temporal + one worker + the API, all real.
type stack struct {
	temporal *testenv.Temporal
	cfg      config.Config
	client   client.Client
	api      *httptest.Server
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
	testenv.StartWorker(t, c, cfg)
	return &stack{temporal: tt, cfg: cfg, client: c, api: testenv.StartAPI(t, c, cfg)}
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
	q := url.Values{"artifactId": {strconv.FormatInt(artifactID, 10)}, "userId": {userID}}
	return do(t, http.MethodGet, s.api.URL+path+"?"+q.Encode(), "")
}

func do(t testing.TB, method, url, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// pairBody is the request body of the original API.
func pairBody(artifactID int64, userID string) string {
	u, err := json.Marshal(userID)
	if err != nil {
		panic(err)
	}
	return `{"artifactId":` + strconv.FormatInt(artifactID, 10) + `,"userId":` + string(u) + `}`
}
