// Package entities is the Temporal side of the APIs: it turns reads and
// writes of one (user, artifact) pair into updates and queries of its entity
// workflow, and Temporal's errors into the few outcomes the APIs tell apart
// (errors.go). The application service (internal/pairs) goes through it
// for every transport.
package entities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	querypb "go.temporal.io/api/query/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/limits"
	"github.com/artifactstate/artifactstate/internal/searchattr"
	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/workflows"
)

// Options say where the entities live.
type Options struct {
	Namespace string
	TaskQueue string
	// DataConverter decodes query results and folded histories; nil is the
	// SDK's default.
	DataConverter converter.DataConverter
	// ReadTimeout bounds one query, shared by the callers reading the same
	// pair at once; 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// SearchAttributes starts entities with their search attributes
	// (internal/searchattr), which must be registered in the namespace.
	SearchAttributes bool
	// MaxInFlight bounds the concurrent calls to Temporal (writes and
	// queries); past it up to MaxQueued calls wait their turn, and a call
	// finding the queue full fails at once with ErrUnavailable (see
	// limits.Gate). 0: no bound.
	MaxInFlight, MaxQueued int
}

// DefaultReadTimeout bounds a query when Options.ReadTimeout is not set.
const DefaultReadTimeout = 10 * time.Second

// Client reads and writes entities through Temporal.
type Client struct {
	temporal client.Client
	opts     Options
	logger   *slog.Logger
	reads    *coalescer
	inFlight *limits.Gate // nil: unbounded
}

// New returns a Client.
func New(temporal client.Client, opts Options, logger *slog.Logger) *Client {
	if opts.DataConverter == nil {
		opts.DataConverter = converter.GetDefaultDataConverter()
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	c := &Client{temporal: temporal, opts: opts, logger: logger, inFlight: limits.NewGate(opts.MaxInFlight, opts.MaxQueued)}
	c.reads = newCoalescer(opts.ReadTimeout, c.readState)
	return c
}

// Command is one write.
type Command struct {
	Kind workflows.CommandKind
	// IdempotencyKey, when set, makes a retried command apply at most once
	// and answer the first result (see workflows.IdempotencyWindow).
	IdempotencyKey string
	// IfVersion, when set, applies the command only at this state version
	// (else a *VersionMismatchError).
	IfVersion *uint64
}

// Apply applies the command to the pair's entity, starting the entity on its
// first write, and returns the state right after it. A nil error means the
// command is applied and durably recorded. On ErrTimeout the command may or
// may not have been applied.
func (c *Client) Apply(ctx context.Context, key entityid.Key, cmd Command) (workflows.State, error) {
	if !cmd.Kind.Valid() {
		return workflows.State{}, fmt.Errorf("unknown command kind %q", cmd.Kind)
	}
	release, err := c.enter(ctx)
	if err != nil {
		return workflows.State{}, err
	}
	defer release()
	ctx, attempts := temporalclient.WithAttempts(ctx)
	req := workflows.CommandRequest{Kind: cmd.Kind, IdempotencyKey: cmd.IdempotencyKey, IfVersion: cmd.IfVersion}
	in := workflows.EntityInput{UserID: key.UserID, ArtifactID: key.ArtifactID}
	updateID := updateIDOf(req)
	for backoff := writeRetryInitial; ; backoff = min(2*backoff, writeRetryMax) {
		res, err := c.updateWithStart(ctx, key, updateID, req, in, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
		var closed *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &closed) {
			// The entity ran before and was closed (terminated by an
			// operator): re-create it from the state its last run ended with.
			res, err = c.recreate(ctx, key, updateID, req)
		}
		// The workflow task the update went out in failed (a task that
		// tried to close the run was refused because a signal or an
		// activity result raced it, say). The server dropped the update,
		// but the worker's copy of the run may have applied it and carry
		// it on: its outcome is unknown. With an idempotency key it is sent
		// again (the entity's records make it apply once); without, the
		// caller learns it failed (ErrEntityStuck: may or may not have been
		// applied). An entity whose tasks keep failing answers that once
		// the deadline leaves no time.
		var notReady *serviceerror.WorkflowNotReady
		if errors.As(err, &notReady) && req.IdempotencyKey != "" && timeLeft(ctx, backoff) {
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
				continue
			}
		}
		return res.State, classifyWrite(ctx, attempts, err)
	}
}

// Backoff of a write sent again after its workflow task failed.
const (
	writeRetryInitial = 50 * time.Millisecond
	writeRetryMax     = time.Second
)

// updateIDOf is the update ID of a command: derived from its idempotency
// key, so that Temporal itself answers a retry within the same run with the
// first outcome, or else a new one (kept across the retries of one call).
func updateIDOf(req workflows.CommandRequest) string {
	if req.IdempotencyKey != "" {
		return "idempotency-key:" + string(req.Kind) + ":" + req.IdempotencyKey
	}
	return uuid.NewString()
}

// Recreate starts a closed entity again, seeded with the state its last run
// ended with, before Temporal deletes that run's history at the end of the
// namespace's retention (internal/reconcile does this for every entity an
// operator terminated). An entity running again already is left alone;
// one never written is an error.
func (c *Client) Recreate(ctx context.Context, key entityid.Key) error {
	ctx, attempts := temporalclient.WithAttempts(ctx)
	last, err := c.lastRun(ctx, key)
	if err != nil {
		return classifyRead(ctx, attempts, fmt.Errorf("recover the state of closed entity %s: %w", key, err))
	}
	_, err = c.temporal.ExecuteWorkflow(ctx,
		c.startOptions(key, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE),
		workflows.EntityWorkflowName, workflows.EntityInput{UserID: key.UserID, ArtifactID: key.ArtifactID,
			State: last.State, Projection: last.Projection, Idempotency: last.Idempotency})
	var running *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &running) {
		return nil // a write re-created it first
	}
	if err != nil {
		return classifyRead(ctx, attempts, err)
	}
	c.logger.WarnContext(ctx, "Re-created a closed entity from its last state",
		"WorkflowID", key.WorkflowID(), "Version", last.State.Version, "Run", last.State.Run)
	return nil
}

func (c *Client) recreate(ctx context.Context, key entityid.Key, updateID string, req workflows.CommandRequest) (workflows.CommandResult, error) {
	last, err := c.lastRun(ctx, key)
	if err != nil {
		return workflows.CommandResult{}, fmt.Errorf("recover the state of closed entity %s: %w", key, err)
	}
	c.logger.WarnContext(ctx, "Re-creating a closed entity from its last state",
		"WorkflowID", key.WorkflowID(), "Version", last.State.Version, "Run", last.State.Run)
	in := workflows.EntityInput{UserID: key.UserID, ArtifactID: key.ArtifactID,
		State: last.State, Projection: last.Projection, Idempotency: last.Idempotency}
	return c.updateWithStart(ctx, key, updateID, req, in, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE)
}

// updateWithStart sends the command as the update updateID, starting the
// entity with input in if it is not running.
func (c *Client) updateWithStart(ctx context.Context, key entityid.Key, updateID string, req workflows.CommandRequest,
	in workflows.EntityInput, reuse enumspb.WorkflowIdReusePolicy) (workflows.CommandResult, error) {
	start := c.temporal.NewWithStartWorkflowOperation(c.startOptions(key, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, reuse),
		workflows.EntityWorkflowName, in)
	handle, err := c.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     updateID,
			UpdateName:   workflows.CommandUpdateName,
			Args:         []any{req},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	var res workflows.CommandResult
	if err != nil {
		return res, err
	}
	return res, handle.Get(ctx, &res)
}

// WorkflowTaskTimeout is how long the server waits for a worker to complete
// an entity's workflow task before it hands the task to another worker: a
// task handed to a worker that then died (killed, or stopping while its
// poll was answered) leaves the entity unable to answer for that long.
// Temporal's default is 10 s, which the fault test saw as exactly 10 s of
// failed calls on the entities of a killed worker. An entity's task is a
// replay of at most worker.maxHistoryEvents events (about 40 ms at 2000)
// and a projection the SDK heartbeats; 3 s leaves that 75 times over.
// Continue-as-new carries it to the next run.
const WorkflowTaskTimeout = 3 * time.Second

func (c *Client) startOptions(key entityid.Key, conflict enumspb.WorkflowIdConflictPolicy, reuse enumspb.WorkflowIdReusePolicy) client.StartWorkflowOptions {
	opts := client.StartWorkflowOptions{
		ID:                       key.WorkflowID(),
		TaskQueue:                c.opts.TaskQueue,
		WorkflowIDConflictPolicy: conflict,
		WorkflowIDReusePolicy:    reuse,
		WorkflowTaskTimeout:      WorkflowTaskTimeout,
	}
	if c.opts.SearchAttributes {
		opts.TypedSearchAttributes = searchattr.ForPair(key)
	}
	return opts
}

// State returns the pair's state; a pair never written is the zero State.
// It reflects every write acknowledged before the call. Callers reading the
// same pair at once share queries (see coalescer).
func (c *Client) State(ctx context.Context, key entityid.Key) (workflows.State, error) {
	return c.reads.read(ctx, key)
}

// enter takes one of the MaxInFlight slots.
func (c *Client) enter(ctx context.Context) (func(), error) {
	release, err := c.inFlight.Enter(ctx)
	switch {
	case errors.Is(err, limits.ErrOverloaded):
		return nil, fmt.Errorf("%w: %w (api.maxInFlightTemporalCalls, api.maxQueuedTemporalCalls)", ErrUnavailable, err)
	case err != nil:
		return nil, err
	}
	return release, nil
}

// Ready checks that the Temporal frontend answers.
func (c *Client) Ready(ctx context.Context) error {
	ctx, attempts := temporalclient.WithAttempts(ctx)
	_, err := c.temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
	return classifyRead(ctx, attempts, err)
}

// readState queries the entity. A pair with no workflow answers the zero
// state without creating one. A closed entity whose query fails (its last
// commands no workflow task processed, which the worker refuses to replay,
// or no worker of its build is left) answers the state folded from its
// history, as the re-creation does.
func (c *Client) readState(ctx context.Context, key entityid.Key) (workflows.State, error) {
	release, err := c.enter(ctx)
	if err != nil {
		return workflows.State{}, err
	}
	defer release()
	ctx, attempts := temporalclient.WithAttempts(ctx)
	var out workflows.State
	closedChecked := false
	for backoff := queryRetryInitial; ; backoff = min(2*backoff, queryRetryMax) {
		err = c.query(ctx, key, workflows.QueryGetAllStates, &out)
		if err == nil {
			return out, nil
		}
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return workflows.State{}, nil
		}
		if ctx.Err() != nil {
			return out, classifyRead(ctx, attempts, err)
		}
		// A closed run answers from its history, whatever the query's
		// failure: no worker may be left to answer (a run pinned to a
		// build whose workers stopped), and its state is final.
		if !closedChecked {
			closedChecked = true
			if closed, describeErr := c.closed(ctx, key); describeErr == nil && closed {
				last, foldErr := c.lastRun(ctx, key)
				if foldErr != nil {
					return out, classifyRead(ctx, attempts, foldErr)
				}
				return last.State, nil
			}
		}
		// A read is idempotent: one that failed for a moment (the query
		// buffer of an entity busy with a task, matching that lost its
		// pollers for a moment) is sent again within the caller's deadline.
		if !retryableQuery(ctx, err) || !timeLeft(ctx, backoff) {
			return out, classifyRead(ctx, attempts, err)
		}
		select {
		case <-ctx.Done():
			return out, classifyRead(ctx, attempts, err)
		case <-time.After(backoff):
		}
	}
}

// Backoff of a read sent again within its deadline.
const (
	queryRetryInitial = 25 * time.Millisecond
	queryRetryMax     = 500 * time.Millisecond
)

// retryableQuery reports whether a query that failed with err may succeed
// when sent again soon: the frontend or matching unavailable or
// overloaded, the entity's query buffer full, no poller seen recently, the
// query cancelled by the server (the poll it went to died with its worker).
func retryableQuery(ctx context.Context, err error) bool {
	return unavailable(err) || noRecentPoller(err) || serverCancelled(ctx, err)
}

// timeLeft reports whether ctx leaves time for a pause of d and another
// attempt.
func timeLeft(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d+100*time.Millisecond
}

// query sends the query with the caller's whole deadline. (The SDK's
// QueryWorkflow gives each attempt half of the remaining time, so a query
// waiting behind a workflow task failed at half the deadline.) The SDK's
// interceptors still retry Unavailable and ResourceExhausted (a busy
// entity) within the deadline.
func (c *Client) query(ctx context.Context, key entityid.Key, queryName string, out any) error {
	resp, err := c.temporal.WorkflowService().QueryWorkflow(ctx, &workflowservice.QueryWorkflowRequest{
		Namespace: c.opts.Namespace,
		Execution: &commonpb.WorkflowExecution{WorkflowId: key.WorkflowID()},
		Query:     &querypb.WorkflowQuery{QueryType: queryName},
	})
	if err != nil {
		return err
	}
	if rejected := resp.GetQueryRejected(); rejected != nil {
		return fmt.Errorf("query %s of %s rejected: workflow status %s", queryName, key, rejected.GetStatus())
	}
	if err := c.opts.DataConverter.FromPayloads(resp.GetQueryResult(), out); err != nil {
		return fmt.Errorf("decode %s result of %s: %w", queryName, key, err)
	}
	return nil
}

func (c *Client) closed(ctx context.Context, key entityid.Key) (bool, error) {
	d, err := c.temporal.DescribeWorkflowExecution(ctx, key.WorkflowID(), "")
	if err != nil {
		return false, err
	}
	return d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}
