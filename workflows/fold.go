package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
)

// Fold recovers, from one run's history, the input its next run needs: the
// run's input state with every command of its history applied in history
// order as the run's code applied them (signalled commands, and the updates
// it accepted with their idempotency keys), including commands the run
// accepted but never processed (it was closed right after them). That is how
// the state of an entity an operator terminated is recovered. dc decodes the
// payloads (the entities' data converter: payload encryption included).
//
// It follows the run's history version (see historyVersion), read from the
// same history: versions 1 and 2 decoded every signal of a run into one
// value per workflow task (a signal without a kind repeated the previous
// one), later versions a fresh value each; from version 2 each change is stamped with its event's
// time, close to the workflow's own. A run that completed no workflow task
// never decided its version: the newest applies.
func Fold(events []*historypb.HistoryEvent, dc converter.DataConverter) (EntityInput, error) {
	rv, err := foldedVersion(events, dc)
	if err != nil {
		return EntityInput{}, err
	}
	var next EntityInput
	var keys IdempotencyRecords
	// Before version 3 the signals of one workflow task were decoded into
	// one value: the task's signals are those after the previous task
	// started.
	var signalled Command
	started := false
	for _, ev := range events {
		var at time.Time
		if rv.fieldTimes {
			at = ev.GetEventTime().AsTime()
		}
		apply := func(kind CommandKind) bool {
			changed, _ := next.State.Apply(kind, at) // the workflow skips unknown kinds too
			return changed
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			signalled = Command{}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			var in EntityInput
			if err := dc.FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
				return next, fmt.Errorf("decode the run's input: %w", err)
			}
			next, started = in, true
			next.State = StartState(in)
			keys = in.Idempotency
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			attrs := ev.GetWorkflowExecutionSignaledEventAttributes()
			if attrs.GetSignalName() != CommandSignalName {
				continue
			}
			if rv.v3 {
				signalled = Command{}
			}
			if err := dc.FromPayloads(attrs.GetInput(), &signalled); err != nil {
				continue // the workflow drops undecodable signals too
			}
			apply(signalled.Kind)
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			attrs := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
			if attrs.GetInput().GetName() != CommandUpdateName {
				continue
			}
			var req CommandRequest
			if err := dc.FromPayloads(attrs.GetInput().GetArgs(), &req); err != nil {
				return next, fmt.Errorf("decode update %s: %w", attrs.GetMeta().GetUpdateId(), err)
			}
			applyRequest(&next.State, &keys, req, ev.GetEventTime().AsTime(), apply)
		}
	}
	if !started {
		return next, fmt.Errorf("the history has no start event")
	}
	next.Idempotency = keys
	return next, nil
}

// foldedVersion is the run's version as decideVersion decided it, read
// from the recorded events instead of the workflow's calls: the history
// version in the options side effect, else the change IDs of its version
// markers.
func foldedVersion(events []*historypb.HistoryEvent, dc converter.DataConverter) (runVersion, error) {
	completedTask := false
	changes := map[string]bool{}
	optionsSeen := false
	for _, ev := range events {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			completedTask = true
		}
		marker := ev.GetMarkerRecordedEventAttributes()
		switch marker.GetMarkerName() {
		case sideEffectMarker:
			if optionsSeen {
				continue // the options are the run's first side effect
			}
			optionsSeen = true
			var opts Options
			if err := dc.FromPayloads(marker.GetDetails()[sideEffectDataKey], &opts); err != nil {
				return runVersion{}, fmt.Errorf("decode the options the run recorded: %w", err)
			}
			if v := opts.HistoryVersion; v > 0 {
				return recordedVersion(v), nil
			}
		case versionMarker:
			var changeID string
			if err := dc.FromPayloads(marker.GetDetails()[versionChangeIDKey], &changeID); err != nil {
				return runVersion{}, fmt.Errorf("decode a version marker: %w", err)
			}
			changes[changeID] = true
		}
	}
	if !completedTask {
		return recordedVersion(HistoryVersion), nil
	}
	v3 := changes[ChangeLocalProjection]
	return markedVersion(changes[ChangeFieldChangedAt], v3, v3 && changes[ChangeProjectNewLife]), nil
}

// Names of the SDK's markers and of their details, as it records them.
const (
	sideEffectMarker   = "SideEffect"
	sideEffectDataKey  = "data"
	versionMarker      = "Version"
	versionChangeIDKey = "change-id"
)
