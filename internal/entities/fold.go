package entities

import (
	"context"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// lastRun folds the latest run's history into the input its next run
// needs: its input state, then every command in history order, as the
// workflow applies them (signalled commands, and updates it accepted with
// their idempotency keys). It includes signals the run accepted but never
// processed (closed right after them). Runs that record when flags change (a
// version marker in their history) get each change stamped with its event's
// time, close to the workflow's own.
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
	return c.fold(key, events)
}

func (c *Client) fold(key entityid.Key, events []*historypb.HistoryEvent) (workflows.EntityInput, error) {
	// The version marker follows the run's first commands in history, so
	// look for it first. A run that completed no workflow task never decided
	// its version: the current code would take the newest.
	fieldTimes := slices.ContainsFunc(events, func(ev *historypb.HistoryEvent) bool {
		return ev.GetMarkerRecordedEventAttributes().GetMarkerName() == versionMarker
	}) || !slices.ContainsFunc(events, func(ev *historypb.HistoryEvent) bool {
		return ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
	})
	dc := c.opts.DataConverter
	var next workflows.EntityInput
	var keys workflows.IdempotencyRecords
	started := false
	for _, ev := range events {
		var at time.Time
		if fieldTimes {
			at = ev.GetEventTime().AsTime()
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			var in workflows.EntityInput
			if err := dc.FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
				return next, fmt.Errorf("decode the input of %s: %w", key, err)
			}
			next, started = in, true
			next.State = workflows.StartState(in)
			keys = in.Idempotency
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			attrs := ev.GetWorkflowExecutionSignaledEventAttributes()
			if attrs.GetSignalName() != workflows.CommandSignalName {
				continue
			}
			var cmd workflows.Command
			if err := dc.FromPayloads(attrs.GetInput(), &cmd); err != nil {
				continue // the workflow drops undecodable signals too
			}
			_, _ = next.State.Apply(cmd.Kind, at) // and skips unknown kinds
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			attrs := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
			if attrs.GetInput().GetName() != workflows.CommandUpdateName {
				continue
			}
			var req workflows.CommandRequest
			if err := dc.FromPayloads(attrs.GetInput().GetArgs(), &req); err != nil {
				return next, fmt.Errorf("decode update %s of %s: %w", attrs.GetMeta().GetUpdateId(), key, err)
			}
			now := ev.GetEventTime().AsTime()
			if _, seen := keys.Lookup(req.IdempotencyKey, now); seen {
				continue
			}
			_, _ = next.State.Apply(req.Kind, at)
			keys.Remember(workflows.IdempotencyRecord{Key: req.IdempotencyKey, Kind: req.Kind,
				Result: workflows.CommandResult{State: next.State}, At: now})
		}
	}
	if !started {
		return next, fmt.Errorf("history of %s has no start event", key)
	}
	next.Idempotency = keys
	return next, nil
}

// versionMarker is the marker workflow.GetVersion records.
const versionMarker = "Version"
