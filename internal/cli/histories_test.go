package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// The pre-deploy replay selects the running entities, narrowed by the
// operator's visibility query, and a sample that is the same IDs on every
// run and about the fraction asked for.
func TestReplaySelection(t *testing.T) {
	t.Parallel()
	var queries []string
	var ids []string
	for i := range 10_000 {
		ids = append(ids, fmt.Sprintf("artifactstate/%d/user-%d", i%37, i))
	}
	list := func(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
		queries = append(queries, req.GetQuery())
		page := 0
		if len(req.GetNextPageToken()) > 0 {
			page = int(req.GetNextPageToken()[0])
		}
		resp := &workflowservice.ListWorkflowExecutionsResponse{}
		for _, id := range ids[page*1000 : (page+1)*1000] {
			resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id}})
		}
		if page < 9 {
			resp.NextPageToken = []byte{byte(page + 1)}
		}
		return resp, nil
	}
	sel := selection{Namespace: "prod", Query: "TemporalWorkerDeploymentVersion IS NULL", Sample: 0.1}
	got, err := openEntities(context.Background(), list, sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 850 || len(got) > 1150 {
		t.Errorf("a 10 %% sample of 10000 kept %d", len(got))
	}
	again, err := openEntities(context.Background(), list, sel)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(again, ",") {
		t.Error("the sample differs between two runs")
	}
	if want := `WorkflowType = "ArtifactStateEntity" AND ExecutionStatus = 'Running' AND (TemporalWorkerDeploymentVersion IS NULL)`; queries[0] != want {
		t.Errorf("query %q, want %q", queries[0], want)
	}
	limited, err := openEntities(context.Background(), list, selection{Namespace: "prod", Sample: 1, Limit: 1500})
	if err != nil || len(limited) != 1500 {
		t.Errorf("limit 1500: %d (%v)", len(limited), err)
	}
}
