// Package entities is the Temporal side of the API: it turns reads and writes
// of one (user, artifact) pair into queries and signals of its entity
// workflow, and Temporal's errors into the few outcomes the API tells apart.
package entities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc/codes"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/limits"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/workflows"
)

var (
	// ErrUnavailable means Temporal could not be reached or shed the load;
	// the caller may retry later.
	ErrUnavailable = errors.New("temporal is unavailable or overloaded")
	// ErrTimeout means Temporal did not answer before the deadline.
	ErrTimeout = errors.New("temporal did not answer in time")
)

// Client reads and writes entities through Temporal.
type Client struct {
	temporal  client.Client
	taskQueue string
	logger    *slog.Logger
	// dc decodes payloads read from histories: the client's converter.
	dc converter.DataConverter
	// inFlight bounds the concurrent operations (nil: unbounded).
	inFlight *limits.Gate
}

// New returns a Client that starts entities on taskQueue.
func New(temporal client.Client, taskQueue string, logger *slog.Logger) *Client {
	return &Client{temporal: temporal, taskQueue: taskQueue, logger: logger, dc: converter.GetDefaultDataConverter()}
}

// WithDataConverter sets the converter the Temporal client uses (payload
// encryption), for decoding histories.
func (c *Client) WithDataConverter(dc converter.DataConverter) *Client {
	c.dc = dc
	return c
}

// WithMaxInFlight bounds the concurrent operations to n (0: no bound);
// past it an operation fails at once with ErrUnavailable.
func (c *Client) WithMaxInFlight(n int) *Client {
	c.inFlight = limits.NewGate(n)
	return c
}

func (c *Client) enter() (func(), error) {
	release, err := c.inFlight.Enter()
	if err != nil {
		return nil, fmt.Errorf("%w: %v (api.maxInFlightTemporalCalls)", ErrUnavailable, err)
	}
	return release, nil
}

// Apply durably records the command in the pair's entity, starting the entity
// on its first write. A nil error means Temporal has persisted the command.
func (c *Client) Apply(ctx context.Context, key entityid.Key, kind workflows.CommandKind) error {
	if !kind.Valid() {
		return fmt.Errorf("unknown command kind %q", kind)
	}
	release, err := c.enter()
	if err != nil {
		return err
	}
	defer release()
	ctx, attempts := temporalclient.WithAttempts(ctx)
	err = c.signalWithStart(ctx, key, kind, workflows.State{}, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
	var closed *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &closed) {
		// The entity ran before and was closed (terminated by an operator):
		// re-create it from the state its last run ended with.
		err = c.recreate(ctx, key, kind)
	}
	return classify(ctx, attempts, err)
}

func (c *Client) recreate(ctx context.Context, key entityid.Key, kind workflows.CommandKind) error {
	last, err := c.lastRunState(ctx, key)
	if err != nil {
		return fmt.Errorf("recover the state of closed entity %s: %w", key, err)
	}
	c.logger.WarnContext(ctx, "Re-creating a closed entity from its last state",
		"WorkflowID", key.WorkflowID(), "Version", last.Version, "Run", last.Run)
	return c.signalWithStart(ctx, key, kind, last, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE)
}

func (c *Client) signalWithStart(ctx context.Context, key entityid.Key, kind workflows.CommandKind, seed workflows.State, reuse enumspb.WorkflowIdReusePolicy) error {
	opts := client.StartWorkflowOptions{
		ID:                    key.WorkflowID(),
		TaskQueue:             c.taskQueue,
		WorkflowIDReusePolicy: reuse,
	}
	in := workflows.EntityInput{UserID: key.UserID, ArtifactID: key.ArtifactID, State: seed}
	_, err := c.temporal.SignalWithStartWorkflow(ctx, key.WorkflowID(), workflows.CommandSignalName,
		workflows.Command{Kind: kind}, opts, workflows.EntityWorkflowName, in)
	return err
}

// State returns the pair's state; a pair never written is the zero State.
// It reflects every write acknowledged before the call.
func (c *Client) State(ctx context.Context, key entityid.Key) (workflows.State, error) {
	return read(ctx, c, key, workflows.QueryGetAllStates, func(s workflows.State) workflows.State { return s })
}

// IsArtifactReadByUser answers the pair's read flag.
func (c *Client) IsArtifactReadByUser(ctx context.Context, key entityid.Key) (bool, error) {
	return read(ctx, c, key, workflows.QueryIsArtifactReadByUser, func(s workflows.State) bool { return s.ArtifactRead })
}

// IsArtifactInUserFeed answers the pair's in-feed flag.
func (c *Client) IsArtifactInUserFeed(ctx context.Context, key entityid.Key) (bool, error) {
	return read(ctx, c, key, workflows.QueryIsArtifactInUserFeed, func(s workflows.State) bool { return s.ArtifactInUserFeed })
}

// Ready checks that the Temporal frontend answers.
func (c *Client) Ready(ctx context.Context) error {
	ctx, attempts := temporalclient.WithAttempts(ctx)
	_, err := c.temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
	return classify(ctx, attempts, err)
}

// read queries the entity. A pair with no workflow answers the zero value
// without creating one. A closed entity whose last commands no workflow task
// processed cannot be queried (the worker refuses to replay it); its state is
// then folded from its history, as the re-creation does.
func read[T any](ctx context.Context, c *Client, key entityid.Key, queryName string, pick func(workflows.State) T) (T, error) {
	var out T
	release, err := c.enter()
	if err != nil {
		return out, err
	}
	defer release()
	ctx, attempts := temporalclient.WithAttempts(ctx)
	v, err := c.temporal.QueryWorkflow(ctx, key.WorkflowID(), "", queryName)
	if err == nil {
		if err := v.Get(&out); err != nil {
			return out, fmt.Errorf("decode %s result of %s: %w", queryName, key, err)
		}
		return out, nil
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return out, nil
	}
	err = classify(ctx, attempts, err)
	if transient(err) {
		return out, err
	}
	closed, describeErr := c.closed(ctx, key)
	if describeErr != nil || !closed {
		return out, err
	}
	last, foldErr := c.lastRunState(ctx, key)
	if foldErr != nil {
		return out, classify(ctx, attempts, foldErr)
	}
	return pick(last), nil
}

func transient(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) || errors.Is(err, context.Canceled)
}

func (c *Client) closed(ctx context.Context, key entityid.Key) (bool, error) {
	d, err := c.temporal.DescribeWorkflowExecution(ctx, key.WorkflowID(), "")
	if err != nil {
		return false, err
	}
	return d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// lastRunState folds the latest run's history: its input state, then every
// command signal in order, as the workflow applies them. It includes
// commands the run accepted but never processed (closed right after them).
// Runs that record when flags change (a version marker in their history) get
// each change stamped with its signal's time, close to the workflow's own.
func (c *Client) lastRunState(ctx context.Context, key entityid.Key) (workflows.State, error) {
	var events []*historypb.HistoryEvent
	it := c.temporal.GetWorkflowHistory(ctx, key.WorkflowID(), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return workflows.State{}, err
		}
		events = append(events, ev)
	}
	// The version marker follows the run's first commands in history, so
	// look for it first. A run that completed no workflow task never decided
	// its version: the current code would take the newest.
	fieldTimes := slices.ContainsFunc(events, func(ev *historypb.HistoryEvent) bool {
		return ev.GetMarkerRecordedEventAttributes().GetMarkerName() == versionMarker
	}) || !slices.ContainsFunc(events, func(ev *historypb.HistoryEvent) bool {
		return ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
	})
	dc := c.dc
	var s workflows.State
	started := false
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			var in workflows.EntityInput
			if err := dc.FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
				return s, fmt.Errorf("decode the input of %s: %w", key, err)
			}
			s, started = workflows.StartState(in), true
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			attrs := ev.GetWorkflowExecutionSignaledEventAttributes()
			if attrs.GetSignalName() != workflows.CommandSignalName {
				continue
			}
			var cmd workflows.Command
			if err := dc.FromPayloads(attrs.GetInput(), &cmd); err != nil {
				continue // the workflow drops undecodable signals too
			}
			var at time.Time
			if fieldTimes {
				at = ev.GetEventTime().AsTime()
			}
			_, _ = s.Apply(cmd.Kind, at) // and skips unknown kinds
		}
	}
	if !started {
		return s, fmt.Errorf("history of %s has no start event", key)
	}
	return s, nil
}

// versionMarker is the marker workflow.GetVersion records (the only version
// change so far is workflows.ChangeFieldChangedAt).
const versionMarker = "Version"

// classify maps Temporal's errors to ErrUnavailable and ErrTimeout (wrapped
// with the cause) and passes everything else through.
func classify(ctx context.Context, attempts *temporalclient.Attempts, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return err
	case unavailable(err):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || code(err) == codes.DeadlineExceeded:
		// The SDK retried until the deadline: what failed last tells why.
		if last := attempts.LastError(); unavailable(last) {
			return fmt.Errorf("%w: %v", ErrUnavailable, last)
		}
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return err
}

func unavailable(err error) bool {
	if err == nil {
		return false
	}
	switch code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return false
}

func code(err error) codes.Code {
	if s := serviceerror.ToStatus(err); s != nil {
		return s.Code()
	}
	return codes.Unknown
}
