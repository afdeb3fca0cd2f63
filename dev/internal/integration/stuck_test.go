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
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/stuck"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/workflows"
)

// An entity whose workflow task keeps failing (a deploy that cannot replay
// it) keeps its writes, answers reads with 503 entity_unavailable (not 500),
// and is listed by `artifactstate stuck`; a worker with good code then
// serves it again with every write.
func TestStuckEntityIsReportedAndRecovers(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{DynamicConfig: map[string]any{
		"system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute": 2,
	}})
	cfg := tt.Config()
	c := testenv.Client(t, cfg, "stuck-test")
	s := &stack{temporal: tt, cfg: cfg, client: c, api: testenv.StartAPI(t, c, cfg, nil)}

	// The broken worker reports its metrics as the worker role does: the
	// alert on failing workflow tasks must see this.
	m := metrics.New("test", "test")
	brokenClient, err := temporalclient.New(cfg.Temporal, testenv.Logger(), temporalclient.Options{Identity: "broken", MetricsHandler: m.Temporal()})
	require.NoError(t, err)
	t.Cleanup(brokenClient.Close)
	broken := sdkworker.New(brokenClient, cfg.Temporal.TaskQueue, sdkworker.Options{})
	broken.RegisterWorkflowWithOptions(func(workflow.Context, workflows.EntityInput) error {
		panic("this deploy cannot replay the entity")
	}, workflow.RegisterOptions{Name: workflows.EntityWorkflowName})
	require.NoError(t, broken.Start())

	k := entityid.Key{UserID: "stuck", ArtifactID: 1}
	opts := startOptions(cfg, k)
	opts.WorkflowTaskTimeout = time.Second
	_, err = c.SignalWithStartWorkflow(context.Background(), k.WorkflowID(), workflows.CommandSignalName,
		workflows.Command{Kind: workflows.SetArtifactAddedToUserFeed}, opts, workflows.EntityWorkflowName,
		workflows.EntityInput{UserID: k.UserID, ArtifactID: k.ArtifactID})
	require.NoError(t, err)

	testenv.Eventually(t, 2*time.Minute, func(context.Context) error {
		r := s.get(t, "/artifactState/getAllStates", 1, "stuck")
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, `"code":"entity_unavailable"`) {
			return fmt.Errorf("read answered %d %s", r.status, r.body)
		}
		return nil
	})
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		list, err := stuck.List(ctx, c, cfg.Temporal.Namespace, 10)
		if err != nil {
			return err
		}
		if len(list) != 1 || list[0].Key != k {
			return fmt.Errorf("stuck entities: %+v", list)
		}
		if !strings.Contains(list[0].LastFailure, "cannot replay") {
			return fmt.Errorf("last failure %q does not say why", list[0].LastFailure)
		}
		return nil
	})

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Greater(t, sample(rec.Body.String(), `temporal_workflow_task_execution_failed_total{workflow_type="ArtifactStateEntity"}`), 0.0,
		"deploy/prometheus/alerts.yml's ArtifactStateWorkflowTasksFailing watches this series")
	broken.Stop()
	testenv.StartWorker(t, c, cfg, nil)
	testenv.Eventually(t, 2*time.Minute, func(context.Context) error {
		const want = `{"artifactId":1,"artifactInUserFeed":true,"artifactRead":false,"userId":"stuck"}`
		if r := s.get(t, "/artifactState/getAllStates", 1, "stuck"); r.body != want {
			return fmt.Errorf("read answered %d %s", r.status, r.body)
		}
		return nil
	})
}
