package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// A strong read that finds the entity's query buffer full (the server holds
// at most history.MaxBufferedQueryCount queries while a workflow task runs;
// production's default is 1) is sent again within its deadline, as any
// read that failed for a moment: every reader gets its answer, none a 503.
// (Before reads were retried, the readers beyond the buffer answered 503 at
// once: the versioned rollout of the fault test saw six.)
func TestReadsWaitOutAFullQueryBuffer(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{DynamicConfig: map[string]any{"history.MaxBufferedQueryCount": 1}})
	cfg := tt.Config()
	c := testenv.Client(t, cfg, "query-buffer")
	testenv.StartWorker(t, c, cfg, activities.NewProjection(slowReadModel{delay: time.Second}, nil)) // each change's task stays open a second
	key := entityid.Key{UserID: "buffered", ArtifactID: 1}
	writer := entities.New(c, testenv.EntitiesOptions(cfg), testenv.Logger())
	if _, err := writer.Apply(context.Background(), key, entities.Command{Kind: workflows.SetArtifactReadByUser}); err != nil {
		t.Fatal(err)
	}

	// Each reader has its own client: readers of one client share a query.
	const readers = 6
	clients := make([]*entities.Client, readers)
	for i := range clients {
		clients[i] = entities.New(testenv.Client(t, cfg, "reader"), testenv.EntitiesOptions(cfg), testenv.Logger())
	}
	for round := range 3 {
		// A change starts a projection: a workflow task open for a second.
		kind := []workflows.CommandKind{workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed}[round%2]
		go func() {
			if _, err := writer.Apply(context.Background(), key, entities.Command{Kind: kind}); err != nil {
				t.Errorf("write: %v", err)
			}
		}()
		// The readers come while that task runs.
		testenv.Eventually(t, 10*time.Second, func(ctx context.Context) error {
			d, err := c.DescribeWorkflowExecution(ctx, key.WorkflowID(), "")
			if err != nil {
				return err
			}
			if d.GetPendingWorkflowTask().GetState() != enumspb.PENDING_WORKFLOW_TASK_STATE_STARTED {
				return fmt.Errorf("no workflow task running")
			}
			return nil
		})
		var wg sync.WaitGroup
		errs := make(chan error, readers)
		for _, e := range clients {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := e.State(ctx, key); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: a strong read failed: %v", round, err)
		}
	}
}
