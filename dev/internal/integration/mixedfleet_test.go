package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/entityid"
)

// A fleet where only some workers have a read model (a rolling change of
// cassandra.hosts, say): projection activities run only on workers that
// have one, because they alone poll the projection's queue. (Before, every
// worker polled the activity and a worker without the activity registered
// failed it.) The read model's first attempts fail here, so every change's
// projection goes through the regular activity.
func TestProjectionsRunOnlyOnWorkersWithAReadModel(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	cfg.Cassandra.Projection.LocalTimeout = 0 // straight to the activity
	cfg.Cassandra.Projection.RetryInitialInterval = 100 * time.Millisecond
	cfg.Cassandra.Projection.RetryMaxInterval = 200 * time.Millisecond
	without := testenv.Client(t, cfg, "worker-without-read-model")
	with := testenv.Client(t, cfg, "worker-with-read-model")
	testenv.StartWorker(t, without, cfg, nil)
	rm := &flakyReadModel{ReadModel: discardWriter{}, failures: 10}
	testenv.StartWorker(t, with, cfg, activities.NewProjection(rm, nil))
	s := &stack{temporal: tt, cfg: cfg, client: without, api: testenv.StartAPI(t, without, cfg, nil)}

	const pairs = 20
	for i := range pairs {
		require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactAddedToUserFeed", pairBody(int64(i), "fleet")).body)
	}
	// An entity on the worker without a read model does not project (it
	// records that it has none); one on the other worker does, through the
	// projection's queue.
	ranEntityTasks := map[string]int{}
	projected := 0
	testenv.Eventually(t, 2*time.Minute, func(ctx context.Context) error {
		clear(ranEntityTasks)
		projected = 0
		for i := range pairs {
			k := entityid.Key{UserID: "fleet", ArtifactID: int64(i)}
			it := s.client.GetWorkflowHistory(ctx, k.WorkflowID(), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			scheduled, completed := 0, 0
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					return err
				}
				if started := ev.GetActivityTaskStartedEventAttributes(); started != nil && started.GetIdentity() != "worker-with-read-model" {
					return fmt.Errorf("pair %d: a projection ran on %s", i, started.GetIdentity())
				}
				if ev.GetActivityTaskScheduledEventAttributes() != nil {
					scheduled++
				}
				if ev.GetActivityTaskCompletedEventAttributes() != nil {
					completed++
				}
				if done := ev.GetWorkflowTaskCompletedEventAttributes(); done != nil {
					ranEntityTasks[done.GetIdentity()]++
				}
			}
			if completed < scheduled {
				return fmt.Errorf("pair %d: %d of %d projections done", i, completed, scheduled)
			}
			if completed > 0 {
				projected++
			}
		}
		if projected == 0 {
			return fmt.Errorf("no pair projected yet (entity tasks by worker: %v)", ranEntityTasks)
		}
		return nil
	})
	t.Logf("%d of %d pairs projected; entity tasks by worker: %v", projected, pairs, ranEntityTasks)
	require.Positive(t, ranEntityTasks["worker-without-read-model"], "both workers ran entities: %v", ranEntityTasks)
}
