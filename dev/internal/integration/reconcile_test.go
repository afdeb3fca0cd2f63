package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/reconcile"
)

// An entity an operator terminated keeps its state only in its closed run's
// history, which Temporal deletes when the namespace's retention passes. In
// a namespace of 5 s retention: without the reconciler the pair then reads
// as never written (the hole); with it, the entity runs again from its last
// state before the history goes, and keeps it after.
func TestTerminatedEntityOutlivesItsRetention(t *testing.T) {
	t.Parallel()
	const retention = 5 * time.Second
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{Retention: retention, DynamicConfig: map[string]any{
		"system.namespaceMinRetentionLocal":    time.Second,
		"history.retentionTimerJitterDuration": time.Second,
	}})
	s := startStackOn(t, tt, nil)
	ctx := context.Background()
	ns, err := s.client.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: testenv.Namespace})
	require.NoError(t, err)
	require.Equal(t, retention, ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(), "the namespace's retention")

	write := func(user, cmd string) {
		require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/"+cmd, pairBody(1, user)).body)
	}
	terminate := func(user string) string {
		k := entityid.Key{UserID: user, ArtifactID: 1}
		d, err := s.client.DescribeWorkflowExecution(ctx, k.WorkflowID(), "")
		require.NoError(t, err)
		require.NoError(t, s.client.TerminateWorkflow(ctx, k.WorkflowID(), "", "operator"))
		return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}
	historyGone := func(user, runID string) {
		testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
			_, err := s.client.DescribeWorkflowExecution(ctx, entityid.Key{UserID: user, ArtifactID: 1}.WorkflowID(), runID)
			var notFound *serviceerror.NotFound
			if errors.As(err, &notFound) {
				return nil
			}
			return fmt.Errorf("run %s of %s is still there (%v)", runID, user, err)
		})
	}
	const written = `{"artifactId":1,"artifactInUserFeed":true,"artifactRead":true,"userId":"%s"}`

	// The hole, without the reconciler.
	write("lost", "setArtifactReadByUser")
	write("lost", "setArtifactAddedToUserFeed")
	historyGone("lost", terminate("lost"))
	require.Equal(t, `{"artifactId":1,"artifactInUserFeed":false,"artifactRead":false,"userId":"lost"}`,
		s.get(t, "/artifactState/getAllStates", 1, "lost").body, "without the reconciler the state is gone")

	// With it.
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	r := reconcile.New(s.client, entities.New(s.client, testenv.EntitiesOptions(s.cfg), testenv.Logger()),
		testenv.Namespace, 500*time.Millisecond, testenv.Logger())
	go func() { defer close(done); r.Run(rctx) }()
	t.Cleanup(func() { stop(); <-done })

	write("kept", "setArtifactReadByUser")
	write("kept", "setArtifactAddedToUserFeed")
	terminated := terminate("kept")
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		d, err := s.client.DescribeWorkflowExecution(ctx, entityid.Key{UserID: "kept", ArtifactID: 1}.WorkflowID(), "")
		if err != nil {
			return err
		}
		if d.GetWorkflowExecutionInfo().GetCloseTime() != nil {
			return errors.New("not running again yet")
		}
		return nil
	})
	historyGone("kept", terminated)
	require.Equal(t, fmt.Sprintf(written, "kept"), s.get(t, "/artifactState/getAllStates", 1, "kept").body)
	write("kept", "setArtifactRemovedFromUserFeed")
	require.Equal(t, `{"artifactId":1,"artifactInUserFeed":false,"artifactRead":true,"userId":"kept"}`,
		s.get(t, "/artifactState/getAllStates", 1, "kept").body)
}
