package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"gopkg.in/yaml.v3"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/ops"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/server"
	"github.com/artifactstate/artifactstate/worker"
)

// observedStack is the whole system wired as the binary wires it, with the
// API process's and the worker process's metrics on separate registries.
type observedStack struct {
	api, apiOps, workerOps    *httptest.Server
	apiMetrics, workerMetrics *metrics.Metrics
}

func startObservedStack(t *testing.T) *observedStack {
	t.Helper()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	cfg.Worker.MaxHistoryEvents = 100
	cassandra, _ := testenv.ReadModel(t, testenv.CassandraHosts(t))
	cfg.Cassandra = cassandra
	o := &observedStack{apiMetrics: metrics.New("test", "abc123"), workerMetrics: metrics.New("test", "abc123")}

	workerClient, err := temporalclient.New(cfg.Temporal, testenv.Logger(), temporalclient.Options{Identity: "observed-worker", MetricsHandler: o.workerMetrics.Temporal()})
	require.NoError(t, err)
	t.Cleanup(workerClient.Close)
	store := readmodel.NewStore(cfg.Cassandra, testenv.Logger(), o.workerMetrics.Cassandra())
	t.Cleanup(store.Close)
	// The first projection fails, so its regular activity runs too.
	w := worker.New(workerClient, worker.SettingsOf(cfg), activities.NewProjection(&flakyReadModel{ReadModel: store, failures: 1}, o.workerMetrics))
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	testenv.Promote(t, w, workerClient)
	o.workerOps = httptest.NewServer(ops.Handler(ops.Deps{Metrics: o.workerMetrics, Ready: func(context.Context) error { return nil }, Logger: testenv.Logger()}))
	t.Cleanup(o.workerOps.Close)

	apiClient, err := temporalclient.New(cfg.Temporal, testenv.Logger(), temporalclient.Options{Identity: "observed-api", MetricsHandler: o.apiMetrics.Temporal()})
	require.NoError(t, err)
	t.Cleanup(apiClient.Close)
	apiStore := readmodel.NewStore(cfg.Cassandra, testenv.Logger(), o.apiMetrics.Cassandra())
	t.Cleanup(apiStore.Close)
	o.api = httptest.NewServer(server.NewHandler(cfg.API, server.Deps{
		Pairs: testenv.Pairs(apiClient, cfg, apiStore), Metrics: o.apiMetrics, Logger: testenv.Logger()}))
	t.Cleanup(o.api.Close)
	// The api role serves its metrics on its admin listener.
	o.apiOps = httptest.NewServer(ops.Handler(ops.Deps{Metrics: o.apiMetrics, Ready: func(context.Context) error { return nil }, Logger: testenv.Logger()}))
	t.Cleanup(o.apiOps.Close)
	return o
}

// flakyReadModel fails its first projections as an unavailable Cassandra.
type flakyReadModel struct {
	activities.ReadModel
	mu       sync.Mutex
	failures int
}

func (f *flakyReadModel) Project(ctx context.Context, p readmodel.Projection) error {
	f.mu.Lock()
	fail := f.failures > 0
	f.failures--
	f.mu.Unlock()
	if fail {
		return readmodel.ErrUnavailable
	}
	return f.ReadModel.Project(ctx, p)
}

// drive sends the original scenario for a few pairs, enough writes on one
// pair for several continue-as-new runs, some bad requests, and list reads.
func (o *observedStack) drive(t *testing.T) {
	t.Helper()
	s := &stack{api: o.api}
	for i := range 5 {
		body := pairBody(int64(i), "observed")
		for _, kind := range allCommands {
			require.Equal(t, http.StatusOK, s.post(t, "/artifactState/"+string(kind), body).status)
		}
		require.Equal(t, http.StatusOK, s.get(t, "/artifactState/getAllStates", int64(i), "observed").status)
		require.Equal(t, http.StatusOK, s.post(t, "/artifactState/isArtifactReadByUser", body).status)
	}
	for i := range 40 {
		require.Equal(t, http.StatusOK, s.post(t, "/artifactState/"+string(allCommands[i%3]), pairBody(99, "busy")).status)
	}
	require.Equal(t, http.StatusBadRequest, s.post(t, "/artifactState/setArtifactReadByUser", `{"artifactId":"x"}`).status)
	// A pair never written: Temporal answers NotFound (a failed request
	// in the SDK's metrics), the API answers false/false.
	require.Equal(t, http.StatusOK, s.get(t, "/artifactState/getAllStates", 12345, "nobody").status)
	// An evicted entity's next task is a sticky cache miss (and a replay).
	sdkworker.PurgeStickyWorkflowCache()
	require.Equal(t, http.StatusOK, s.post(t, "/artifactState/setArtifactAddedToUserFeed", pairBody(0, "observed")).status)
	require.Equal(t, http.StatusOK, s.get(t, "/artifactState/getAllStates", 0, "observed").status)
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		var page listJSON
		return s.getJSON(t, "/v1/users/observed/read", &page)
	})
	// The projection catches up: its metrics come with it.
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		if v := sample(scrape(t, o.workerOps.URL+"/metrics"), `artifactstate_projection_attempts_total{result="ok"}`); v < 5 {
			return errString("projections so far: " + strconv.FormatFloat(v, 'f', -1, 64))
		}
		return nil
	})
}

type errString string

func (e errString) Error() string { return string(e) }

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// sample sums the samples whose name and labels contain series (a name, or
// a name with some of its labels: `x_total{result="ok"}`).
func sample(exposition, series string) float64 {
	name, labels, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
	var sum float64
	for _, line := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		metric, value := line[:i], line[i+1:]
		if metric != name && !strings.HasPrefix(metric, name+"{") {
			continue
		}
		for _, l := range strings.Split(labels, ",") {
			if l != "" && !strings.Contains(metric, l) {
				metric = ""
			}
		}
		if metric == "" {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			sum += v
		}
	}
	return sum
}

var metricName = regexp.MustCompile(`(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*)`)

// names lists the metric names in an exposition.
func names(exposition string) []string {
	var out []string
	for _, m := range metricName.FindAllStringSubmatch(exposition, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	o := startObservedStack(t)
	o.drive(t)
	api := scrape(t, o.apiOps.URL+"/metrics")
	wrk := scrape(t, o.workerOps.URL+"/metrics")
	if testing.Verbose() {
		t.Logf("api metrics: %v", names(api))
		t.Logf("worker metrics: %v", names(wrk))
	}
	for _, c := range []struct {
		exposition, series string
	}{
		{api, `artifactstate_http_requests_total{route="/artifactState/setArtifactReadByUser",method="POST",code="200"}`},
		{api, `artifactstate_http_requests_total{route="/artifactState/setArtifactReadByUser",method="POST",code="400"}`},
		{api, `artifactstate_http_requests_total{route="/artifactState/getAllStates",method="GET",code="200"}`},
		{api, `artifactstate_http_request_duration_seconds_count{route="/artifactState/isArtifactReadByUser",method="POST"}`},
		// Update-with-start waits for the entity: the SDK counts it with the long requests.
		{api, `temporal_long_request_total{operation="ExecuteMultiOperation"}`},
		{api, `temporal_long_request_latency_seconds_count{operation="ExecuteMultiOperation"}`},
		{api, `temporal_request_total{operation="QueryWorkflow"}`},
		{api, `artifactstate_cassandra_query_duration_seconds_count{operation="SELECT user_read"}`},
		{api, `artifactstate_build_info{version="test",commit="abc123"}`},
		{api, `go_goroutines`},
		{api, `process_resident_memory_bytes`},
		{wrk, `temporal_workflow_task_schedule_to_start_latency_seconds_count`},
		{wrk, `temporal_workflow_task_execution_latency_seconds_count`},
		{wrk, `temporal_local_activity_execution_latency_seconds_count{activity_type="ProjectState"}`},
		{wrk, `temporal_activity_execution_latency_seconds_count{activity_type="ProjectState"}`},
		{wrk, `temporal_long_request_total{operation="PollWorkflowTaskQueue"}`},
		{wrk, `artifactstate_entity_commands_total{command="setArtifactReadByUser"}`},
		{wrk, `artifactstate_entity_commands_total{command="setArtifactRemovedFromUserFeed"}`},
		{wrk, `artifactstate_entity_state_changes_total`},
		{wrk, `artifactstate_entity_continue_as_new_total`},
		{wrk, `artifactstate_projection_attempts_total{result="ok"}`},
		{wrk, `artifactstate_projection_lag_seconds_count`},
		{wrk, `artifactstate_cassandra_query_duration_seconds_count{operation="BATCH"}`},
		{wrk, `go_memstats_heap_alloc_bytes`},
	} {
		require.Greater(t, sample(c.exposition, c.series), 0.0, "%s missing or zero", c.series)
	}
	require.Contains(t, api, "artifactstate_http_requests_in_flight")
	require.Contains(t, wrk, "temporal_worker_task_slots_available")
	require.Contains(t, wrk, "temporal_sticky_cache_size")
	require.Contains(t, wrk, "artifactstate_projection_in_flight")
	require.Greater(t, sample(wrk, "temporal_sticky_cache_miss_total"), 0.0)

	// Every metric a dashboard or an alert rule uses is produced.
	produced := map[string]bool{
		"up": true, // Prometheus's own
		// Only a failing workflow task produces it: TestStuckEntityIsReportedAndRecovers
		// checks the SDK emits it, with these labels, for a stuck entity.
		"temporal_workflow_task_execution_failed_total": true,
	}
	for _, n := range append(names(api), names(wrk)...) {
		produced[n] = true
	}
	for file, used := range dashboardAndRuleMetrics(t) {
		for _, n := range used {
			require.True(t, produced[n], "%s uses %s, which no process produces", file, n)
		}
	}
}

var promIdent = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

// metricsIn lists the metric names a PromQL expression uses: identifiers
// with one of our prefixes (label names and functions have none).
func metricsIn(expr string) []string {
	var out []string
	for _, id := range promIdent.FindAllString(expr, -1) {
		for _, p := range []string{"artifactstate_", "temporal_", "go_", "process_"} {
			if strings.HasPrefix(id, p) {
				out = append(out, id)
			}
		}
		if id == "up" {
			out = append(out, id)
		}
	}
	return out
}

// dashboardAndRuleMetrics reads deploy/grafana/dashboards/*.json and
// deploy/prometheus/alerts.yml, checks they are importable/loadable, and
// returns the metric names each uses.
func dashboardAndRuleMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	files, err := filepath.Glob("../../../deploy/grafana/dashboards/*.json")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4, "API, worker, projection and runtime dashboards")
	uids := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var d grafanaDashboard
		require.NoError(t, json.Unmarshal(raw, &d), "%s is not valid JSON", f)
		require.NotEmpty(t, d.UID, f)
		require.NotEmpty(t, d.Title, f)
		require.Greater(t, d.SchemaVersion, 30, "%s: schemaVersion", f)
		require.NotEmpty(t, d.Panels, f)
		require.NotNil(t, d.Templating.List, "%s: templating", f)
		require.Empty(t, uids[d.UID], "%s and %s share uid %s", f, uids[d.UID], d.UID)
		uids[d.UID] = f
		ids := map[int]bool{}
		for _, p := range d.Panels {
			require.False(t, ids[p.ID], "%s: panel id %d twice", f, p.ID)
			ids[p.ID] = true
			require.NotEmpty(t, p.Type, "%s: panel %d has no type", f, p.ID)
			require.NotEmpty(t, p.Title, "%s: panel %d has no title", f, p.ID)
			require.NotNil(t, p.GridPos, "%s: panel %q has no gridPos", f, p.Title)
			if p.Type == "row" {
				continue
			}
			require.NotEmpty(t, p.Targets, "%s: panel %q has no query", f, p.Title)
			require.NotNil(t, p.Datasource, "%s: panel %q has no datasource", f, p.Title)
			for _, target := range p.Targets {
				require.NotEmpty(t, target.Expr, "%s: panel %q", f, p.Title)
				out[f] = append(out[f], metricsIn(target.Expr)...)
			}
		}
	}
	raw, err := os.ReadFile("../../../deploy/prometheus/alerts.yml")
	require.NoError(t, err)
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &rules))
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts++
			require.NotEmpty(t, r.Alert)
			require.NotEmpty(t, r.Expr, r.Alert)
			require.Equal(t, strings.Count(r.Expr, "("), strings.Count(r.Expr, ")"), "%s: unbalanced parentheses", r.Alert)
			require.NotEmpty(t, r.Labels["severity"], r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], r.Alert)
			out["alerts.yml"] = append(out["alerts.yml"], metricsIn(r.Expr)...)
		}
	}
	require.GreaterOrEqual(t, alerts, 5)
	return out
}

type grafanaDashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []any `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int            `json:"id"`
		Type       string         `json:"type"`
		Title      string         `json:"title"`
		GridPos    map[string]int `json:"gridPos"`
		Datasource map[string]any `json:"datasource"`
		Targets    []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}
