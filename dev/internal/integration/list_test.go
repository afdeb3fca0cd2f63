package integration

import (
	"fmt"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/entityid"
)

func listRequest(key entityid.Key) *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: testenv.Namespace,
		Query:     fmt.Sprintf("WorkflowId = %q", key.WorkflowID()),
		PageSize:  1000,
	}
}
