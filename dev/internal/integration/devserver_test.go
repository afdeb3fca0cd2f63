package integration

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// The embedded server runs one partition per task queue (devserver's
// dynamic config), read back from the live server.
func TestEmbeddedServerRunsOnePartitionPerTaskQueue(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	resp, err := s.client.WorkflowService().ListTaskQueuePartitions(context.Background(), &workflowservice.ListTaskQueuePartitionsRequest{
		Namespace: s.cfg.Temporal.Namespace,
		TaskQueue: &taskqueuepb.TaskQueue{Name: s.cfg.Temporal.TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
	})
	require.NoError(t, err)
	require.Len(t, resp.WorkflowTaskQueuePartitions, 1)
	require.Len(t, resp.ActivityTaskQueuePartitions, 1)
}
