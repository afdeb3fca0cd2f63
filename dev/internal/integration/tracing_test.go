package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/internal/tracing"
	"github.com/artifactstate/artifactstate/server"
	"github.com/artifactstate/artifactstate/worker"
)

type discardWriter struct{}

func (discardWriter) Project(context.Context, readmodel.Projection) error { return nil }

func (discardWriter) Stamp(context.Context, string, int64) (readmodel.Stamp, bool, error) {
	return readmodel.Stamp{}, false, nil
}

// One write is one trace: the HTTP request, the Temporal client call, the
// workflow validating and handling the update, and the projection it runs.
// Not parallel: it installs the global tracer provider.
func TestTraceFollowsAWriteIntoTheWorkflowAndActivity(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	tr, err := tracing.WithExporter(exporter, config.Tracing{SampleRatio: 1, ServiceName: "artifactstate-test"}, "test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })

	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	c, err := temporalclient.New(cfg.Temporal, testenv.Logger(), temporalclient.Options{Identity: "traced", Interceptors: tr.Interceptors()})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := worker.New(c, worker.SettingsOf(cfg), activities.NewProjection(discardWriter{}, nil))
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	testenv.Promote(t, w, c)
	api := httptest.NewServer(server.NewHandler(cfg.API, server.Deps{
		Pairs: testenv.Pairs(c, cfg, nil), Tracing: true, Logger: testenv.Logger()}))
	t.Cleanup(api.Close)

	r := do(t, http.MethodPost, api.URL+"/artifactState/setArtifactReadByUser", pairBody(1, "traced"))
	require.Equal(t, http.StatusOK, r.status, r.body)

	// (The RunWorkflow span ends, and is exported, only when a run closes.)
	want := []string{"/artifactState/setArtifactReadByUser", "UpdateWithStartWorkflow:applyCommand",
		"ValidateUpdate:applyCommand", "HandleUpdate:applyCommand", "StartActivity:ProjectState", "RunActivity:ProjectState"}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		if err := tr.ForceFlush(ctx); err != nil {
			return err
		}
		spans := exporter.GetSpans()
		var root *tracetest.SpanStub
		for i := range spans {
			if strings.Contains(spans[i].Name, "/artifactState/setArtifactReadByUser") {
				root = &spans[i]
			}
		}
		if root == nil {
			return fmt.Errorf("no HTTP span among %d", len(spans))
		}
		inTrace := map[string]bool{}
		var got []string
		for _, s := range spans {
			if s.SpanContext.TraceID() == root.SpanContext.TraceID() {
				inTrace[s.Name] = true
				got = append(got, s.Name)
			}
		}
		for _, name := range want {
			found := false
			for n := range inTrace {
				if strings.Contains(n, name) {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("trace %s lacks %q; it has %v", root.SpanContext.TraceID(), name, got)
			}
		}
		return nil
	})
}
