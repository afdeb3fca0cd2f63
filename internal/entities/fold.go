package entities

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// lastRun fetches the latest run's history and folds it into the input its
// next run needs (workflows.Fold).
func (c *Client) lastRun(ctx context.Context, key entityid.Key) (workflows.EntityInput, error) {
	var events []*historypb.HistoryEvent
	it := c.temporal.GetWorkflowHistory(ctx, key.WorkflowID(), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return workflows.EntityInput{}, err
		}
		events = append(events, ev)
	}
	in, err := workflows.Fold(events, c.opts.DataConverter)
	if err != nil {
		return in, fmt.Errorf("fold the history of %s: %w", key, err)
	}
	return in, nil
}
