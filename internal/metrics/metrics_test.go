package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(b)
}

// The SDK handler names metrics the way Temporal's SDK dashboards query them.
func TestTemporalHandlerNames(t *testing.T) {
	t.Parallel()
	m := New("v", "c")
	h := m.Temporal().WithTags(map[string]string{"namespace": "default", "operation": "QueryWorkflow"})
	h.Counter("temporal_request").Inc(2)
	h.Counter("already_total").Inc(1)
	h.Timer("temporal_request_latency").Record(30 * time.Millisecond)
	h.Gauge("temporal_sticky_cache_size").Update(7)
	out := scrape(t, m)
	require.Contains(t, out, `temporal_request_total{`+labels(map[string]string{"namespace": "default", "operation": "QueryWorkflow"})+`} 2`)
	require.Contains(t, out, `already_total{`+labels(map[string]string{"namespace": "default", "operation": "QueryWorkflow"})+`} 1`)
	require.Contains(t, out, `temporal_request_latency_seconds_bucket{`+labels(map[string]string{"namespace": "default", "operation": "QueryWorkflow"})+`,le="0.05"} 1`)
	require.Contains(t, out, `temporal_sticky_cache_size{`+labels(map[string]string{"namespace": "default", "operation": "QueryWorkflow"})+`} 7`)
}

// The SDK emits one name with several tag sets: every set keeps its tags,
// whichever came first (a failed request adds status_code).
func TestTemporalHandlerKeepsEveryTagSet(t *testing.T) {
	t.Parallel()
	for _, order := range [][]map[string]string{
		{{"operation": "QueryWorkflow"}, {"operation": "QueryWorkflow", "status_code": "NOT_FOUND"}},
		{{"operation": "QueryWorkflow", "status_code": "NOT_FOUND"}, {"operation": "QueryWorkflow"}},
	} {
		m := New("v", "c")
		for _, tags := range order {
			m.Temporal().WithTags(tags).Counter("temporal_request_failure").Inc(1)
		}
		require.NotPanics(t, func() {
			m.Temporal().WithTags(map[string]string{"unknown_tag": "x"}).Counter("temporal_request_failure").Inc(1)
			m.Temporal().Gauge("temporal_request_failure_total").Update(1) // another type under the same name
		})
		out := scrape(t, m)
		require.Contains(t, out, `temporal_request_failure_total{`+labels(map[string]string{"operation": "QueryWorkflow", "status_code": "NOT_FOUND"})+`} 1`)
		require.Contains(t, out, `temporal_request_failure_total{`+labels(map[string]string{"operation": "QueryWorkflow"})+`} 1`)
		require.Contains(t, out, `temporal_request_failure_total{`+labels(nil)+`} 1`, "an unknown tag is dropped")
	}
}

// labels renders every Temporal label, in order, with the values given.
func labels(values map[string]string) string {
	var parts []string
	for _, l := range temporalLabels {
		parts = append(parts, l+`="`+values[l]+`"`)
	}
	return strings.Join(parts, ",")
}

func TestHTTPAndProjectionSeries(t *testing.T) {
	t.Parallel()
	m := New("1.2.3", "abc")
	m.ObserveHTTP("/artifactState/getAllStates", "GET", "200", 3*time.Millisecond)
	m.ProjectionStarted()
	m.ProjectionFinished("ok", 2, 40*time.Millisecond)
	out := scrape(t, m)
	for _, want := range []string{
		`artifactstate_http_requests_total{code="200",method="GET",route="/artifactState/getAllStates"} 1`,
		`artifactstate_projection_attempts_total{result="ok"} 1`,
		`artifactstate_projection_attempts_total{result="rejected"} 0`,
		`artifactstate_projection_retries_total 1`,
		`artifactstate_projection_lag_seconds_count 1`,
		`artifactstate_projection_in_flight 0`,
		`artifactstate_build_info{commit="abc",goversion=`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		require.Contains(t, out, want)
	}
}

func TestOperationOf(t *testing.T) {
	t.Parallel()
	for stmt, want := range map[string]string{
		"SELECT artifact_id FROM user_feed WHERE user_id = ?":         "SELECT user_feed",
		"INSERT INTO artifact_state (user_id) VALUES (?)":             "INSERT artifact_state",
		"DELETE FROM user_read WHERE user_id = ? AND artifact_id = ?": "DELETE user_read",
		"CREATE TABLE IF NOT EXISTS schema_migrations (version int)":  "CREATE schema_migrations",
		"select release_version from system.local":                    "SELECT system.local",
		"UPDATE t SET x = 1": "UPDATE t",
		"":                   "UNKNOWN",
		"  TRUNCATE":         "TRUNCATE",
	} {
		require.Equal(t, want, OperationOf(stmt), strings.TrimSpace(stmt))
	}
}
