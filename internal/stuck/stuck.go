// Package stuck finds the entities that cannot run: their workflow task keeps
// failing or timing out (typically a deploy whose code cannot replay them).
// Their commands are kept, but reads answer 503 until an operator acts
// (deploys code that replays them, or resets them). Temporal marks such
// workflows with the TemporalReportedProblems search attribute after
// system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute (5)
// consecutive failures.
package stuck

import (
	"context"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// Query is the visibility query that lists stuck entities; the same works
// in `temporal workflow list --query` and the Web UI.
const Query = `WorkflowType = '` + workflows.EntityWorkflowName + `' AND ExecutionStatus = 'Running' AND ` +
	`TemporalReportedProblems IN ('category=WorkflowTaskFailed', 'category=WorkflowTaskTimedOut')`

// Entity is one stuck entity.
type Entity struct {
	WorkflowID string
	RunID      string
	// Key is the pair, when the workflow ID is one of ours.
	Key      entityid.Key
	Problems []string
	// Attempt is the failing workflow task's attempt number.
	Attempt int32
	// LastFailure is why the workflow task failed last, when known.
	LastFailure string
}

// List returns up to limit stuck entities of the client's namespace.
func List(ctx context.Context, c client.Client, namespace string, limit int) ([]Entity, error) {
	var out []Entity
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: Query, PageSize: int32(min(limit, 1000)), NextPageToken: token,
		})
		if err != nil {
			return out, fmt.Errorf("list stuck entities: %w", err)
		}
		for _, info := range resp.GetExecutions() {
			e := Entity{WorkflowID: info.GetExecution().GetWorkflowId(), RunID: info.GetExecution().GetRunId(),
				Problems: problems(info.GetSearchAttributes())}
			if k, err := entityid.Parse(e.WorkflowID); err == nil {
				e.Key = k
			}
			d, err := c.DescribeWorkflowExecution(ctx, e.WorkflowID, e.RunID)
			if err != nil {
				return out, fmt.Errorf("describe %s: %w", e.WorkflowID, err)
			}
			if wft := d.GetPendingWorkflowTask(); wft != nil {
				e.Attempt = wft.GetAttempt()
			}
			if e.LastFailure, err = lastTaskFailure(ctx, c, e.WorkflowID, e.RunID); err != nil {
				return out, err
			}
			out = append(out, e)
			if len(out) >= limit {
				return out, nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// lastTaskFailure is the message of the run's latest workflow task failure.
func lastTaskFailure(ctx context.Context, c client.Client, workflowID, runID string) (string, error) {
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	last := ""
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return "", fmt.Errorf("history of %s: %w", workflowID, err)
		}
		if f := ev.GetWorkflowTaskFailedEventAttributes(); f != nil {
			last = f.GetCause().String() + ": " + f.GetFailure().GetMessage()
		}
	}
	return last, nil
}

func problems(sa *commonpb.SearchAttributes) []string {
	var out []string
	if p := sa.GetIndexedFields()["TemporalReportedProblems"]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &out)
	}
	return out
}
