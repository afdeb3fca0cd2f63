package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/buildid"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/release"
	"github.com/artifactstate/artifactstate/internal/searchattr"
	"github.com/artifactstate/artifactstate/workflows"
)

// Operators find a user's entities, and the entities a given build runs,
// with a visibility query (`temporal workflow list --query`, the
// Web UI); with temporal.searchAttributes off no user ID reaches visibility.
func TestEntitiesAreListedByUserAndCodeVersion(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	for _, id := range []int64{1, 2} {
		require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactReadByUser", pairBody(id, "listed user")).body)
	}
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactReadByUser", pairBody(1, "someone else")).body)
	list := func(ctx context.Context, query string) ([]string, error) {
		resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: testenv.Namespace, Query: query})
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		slices.Sort(ids)
		return ids, nil
	}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		ids, err := list(ctx, `ArtifactStateUserId = 'listed user'`)
		if err != nil {
			return err
		}
		if want := []string{"artifactstate/1/listed%20user", "artifactstate/2/listed%20user"}; !slices.Equal(ids, want) {
			return fmt.Errorf("listed %v, want %v", ids, want)
		}
		// The build that runs them (Worker Versioning's attribute).
		ids, err = list(ctx, fmt.Sprintf(`TemporalWorkerDeploymentVersion = '%s' AND ArtifactStateArtifactId = 1`,
			release.VersionString("artifactstate", buildid.Of(""))))
		if err != nil {
			return err
		}
		if len(ids) != 2 {
			return fmt.Errorf("entities of artifact 1 on this build: %v", ids)
		}
		return nil
	})
	// The history version is no longer stamped (history version 5 on).
	d, err := s.client.DescribeWorkflowExecution(context.Background(), "artifactstate/1/listed%20user", "")
	require.NoError(t, err)
	require.NotContains(t, d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(), workflows.SearchAttributeHistoryVersion.GetName())

	off := startStack(t, func(c *config.Config) { c.Temporal.SearchAttributes = false })
	require.Equal(t, `{"success":true}`, off.post(t, "/artifactState/setArtifactReadByUser", pairBody(1, "private")).body)
	d, err = off.client.DescribeWorkflowExecution(context.Background(), "artifactstate/1/private", "")
	require.NoError(t, err)
	require.NotContains(t, d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(), workflows.SearchAttributeUserID.GetName())
}

// `artifactstate migrate` (and the dev role) register the search attributes
// a namespace lacks, and leave them alone when they are there.
func TestSearchAttributesAreRegistered(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	c := testenv.Client(t, cfg, "searchattr")
	ctx := context.Background()
	added, err := searchattr.Register(ctx, c, testenv.Namespace)
	require.NoError(t, err)
	require.Empty(t, added, "the dev server creates its namespace with them")

	_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: "fresh", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	require.NoError(t, err)
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		added, err = searchattr.Register(ctx, c, "fresh")
		return err
	})
	require.ElementsMatch(t, []string{"ArtifactStateUserId", "ArtifactStateArtifactId", "ArtifactStateHistoryVersion"}, added)
	added, err = searchattr.Register(ctx, c, "fresh")
	require.NoError(t, err)
	require.Empty(t, added)
}
