package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/internal/projection"
)

// Options tune the entity workflow; they are worker configuration. Each run
// records the Options it starts with in its history (a side effect), so a
// replay on a worker configured differently makes the same decisions; new
// values take effect from the next run.
type Options struct {
	// MaxHistoryEvents makes a run continue as new once its history holds
	// this many events, before the server suggests it (at about 4096 events
	// or 4 MiB). Zero leaves the decision to the server alone.
	MaxHistoryEvents int `json:"maxHistoryEvents"`
	// Project writes every state change to the read model. It is re-read at
	// each change (recorded when it flips), so enabling the read model
	// reaches idle entities at their next write.
	Project bool `json:"-"`
	// Projection tunes how the projection runs.
	Projection projection.Options `json:"projection"`
}

// Entity is the entity workflow. Register Entity.Run under
// EntityWorkflowName.
type Entity struct {
	opts Options
}

// NewEntity returns the entity workflow with the given options.
func NewEntity(opts Options) *Entity { return &Entity{opts: opts} }

// Run is one run of an entity: it applies commands (updates, and signals as
// before history version 3) in arrival order, answers queries, projects
// changes to the read model, and continues as new, carrying its state, when
// its history grows past the budget. It never completes on its own.
func (e *Entity) Run(ctx workflow.Context, in EntityInput) error {
	logger := workflow.GetLogger(ctx)
	// An entity is the only copy of its state: a cancellation request is
	// logged (at the next command) and otherwise ignored; terminate an entity
	// to close it. No coroutine watches for it: every coroutine costs each
	// cached entity a goroutine stack in the worker.
	cancellation := ctx
	cancellationLogged := false
	ctx, _ = workflow.NewDisconnectedContext(ctx)

	s := StartState(in)
	if err := registerQueries(ctx, &s); err != nil {
		return err
	}
	// History version 2: record when each flag changes.
	fieldTimes := workflow.GetVersion(ctx, ChangeFieldChangedAt, workflow.DefaultVersion, 1) >= 1
	// History version 3: local projection with the projection clock.
	v3 := workflow.GetVersion(ctx, ChangeLocalProjection, workflow.DefaultVersion, 1) >= 1
	// History version 4: project a new life's first command even when it
	// changes nothing.
	v4 := v3 && workflow.GetVersion(ctx, ChangeProjectNewLife, workflow.DefaultVersion, 1) >= 1
	changedAt := func() time.Time {
		if fieldTimes {
			return workflow.Now(ctx)
		}
		return time.Time{}
	}
	opts := e.recordOptions(ctx)
	if v3 {
		if err := upsertHistoryVersion(ctx); err != nil {
			return err
		}
	}
	p := &projector{key: in, state: &s, progress: in.Projection, opts: opts.Projection, v3: v3}
	if p.progress.ChangedAt.IsZero() {
		p.progress.ChangedAt = workflow.Now(ctx)
	}
	projecting := false
	project := func() {
		if !projecting && e.projectionEnabled(ctx) {
			projecting = true
			workflow.Go(ctx, p.run)
		}
	}
	if s.Version > p.progress.Version {
		project() // the previous run ended before its last projection
	}
	metrics := workflow.GetMetricsHandler(ctx)
	apply := func(kind CommandKind) bool { return applyLogged(logger, metrics, &s, kind, changedAt()) }
	// stateChanged runs once after the commands of one batch changed the
	// state (as every version did).
	stateChanged := func() {
		p.progress.ChangedAt = workflow.Now(ctx)
		project()
	}
	// unchanged runs after commands that changed nothing: the first one of
	// an entity that never projected still writes its (zero) state, which
	// replaces the rows of an earlier life of the pair (v4).
	unchanged := func() {
		if v4 && p.neverProjected() && !p.force {
			p.force = true
			project()
		}
	}

	// Updates: validated first (a rejected update leaves no trace in
	// history), then applied at once; the main loop below then checks the
	// history budget.
	keys := in.Idempotency
	updated := false
	if err := workflow.SetUpdateHandlerWithOptions(ctx, CommandUpdateName,
		func(ctx workflow.Context, req CommandRequest) (CommandResult, error) {
			now := workflow.Now(ctx)
			if rec, ok := keys.Lookup(req.IdempotencyKey, now); ok {
				return rec.Result, nil
			}
			if apply(req.Kind) {
				stateChanged()
			} else {
				unchanged()
			}
			res := CommandResult{State: s}
			keys.Remember(IdempotencyRecord{Key: req.IdempotencyKey, Kind: req.Kind, Result: res, At: now})
			updated = true
			return res, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req CommandRequest) error {
			return validate(s, keys, req, workflow.Now(ctx))
		}},
	); err != nil {
		return fmt.Errorf("register update %s: %w", CommandUpdateName, err)
	}

	commands := workflow.GetSignalChannel(ctx, CommandSignalName)
	for {
		// The context is disconnected from cancellation: Await cannot fail.
		_ = workflow.Await(ctx, func() bool { return commands.Len() > 0 || updated || p.pauseEnded })
		updated, p.pauseEnded = false, false
		if !cancellationLogged && cancellation.Err() != nil {
			logger.Warn("Ignoring cancellation request: entity workflows run until terminated")
			cancellationLogged = true
		}
		// Apply every signalled command already delivered, so that a
		// continue-as-new below carries all of them. Runs before version 3
		// decoded every signal of a task into one value (a signal without a
		// kind repeated the previous one); they replay as they ran.
		var cmd Command
		changed, received := false, false
		for {
			if v3 {
				cmd = Command{}
			}
			if !commands.ReceiveAsync(&cmd) {
				break
			}
			received = true
			changed = apply(cmd.Kind) || changed
		}
		if changed {
			stateChanged()
		} else if received {
			unchanged()
		}
		if !continueAsNewDue(ctx, opts.MaxHistoryEvents) {
			continue
		}
		// Update handlers return at once, but an update accepted in this
		// task must finish before the run closes. A command that arrives
		// after this point and before the run closes makes the server reject
		// the continue-as-new (signals) or retry the update on the next run
		// (updates), so it is applied, never lost. A projection still running
		// is abandoned: the next run redoes it.
		if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
			return err
		}
		info := workflow.GetInfo(ctx)
		logger.Info("Continuing as new",
			"HistoryLength", info.GetCurrentHistoryLength(),
			"Suggested", info.GetContinueAsNewSuggested(),
			"Run", s.Run, "Version", s.Version, "CommandsApplied", s.CommandsApplied,
			"ProjectedVersion", p.progress.Version)
		metrics.Counter(MetricContinueAsNew).Inc(1)
		return workflow.NewContinueAsNewError(ctx, EntityWorkflowName, EntityInput{
			UserID:      in.UserID,
			ArtifactID:  in.ArtifactID,
			State:       s,
			Projection:  p.progress,
			Idempotency: keys,
		})
	}
}

// upsertHistoryVersion records this code's HistoryVersion in the run's
// search attributes when the run carries an older one (it continued as new
// from a run of older code). A run started without the attribute (search
// attributes off, or not registered) is left without.
func upsertHistoryVersion(ctx workflow.Context) error {
	v, ok := workflow.GetTypedSearchAttributes(ctx).GetInt64(SearchAttributeHistoryVersion)
	if !ok || v == HistoryVersion {
		return nil
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchAttributeHistoryVersion.ValueSet(HistoryVersion)); err != nil {
		return fmt.Errorf("upsert %s: %w", SearchAttributeHistoryVersion.GetName(), err)
	}
	return nil
}

// validate accepts or rejects an update before it enters history.
func validate(s State, keys IdempotencyRecords, req CommandRequest, now time.Time) error {
	if !req.Kind.Valid() {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown command kind %q", req.Kind), ErrTypeInvalidCommand, nil)
	}
	if rec, ok := keys.Lookup(req.IdempotencyKey, now); ok {
		if rec.Kind != req.Kind {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("idempotency key %q was used for %s", req.IdempotencyKey, rec.Kind), ErrTypeIdempotencyKeyReused, nil)
		}
		return nil // answered with the recorded result, whatever the version now
	}
	if req.IfVersion != nil && *req.IfVersion != s.Version {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the state is at version %d, not %d", s.Version, *req.IfVersion), ErrTypeVersionMismatch, nil, s)
	}
	return nil
}

// recordOptions records the worker's Options in this run's history.
func (e *Entity) recordOptions(ctx workflow.Context) Options {
	var opts Options
	v := workflow.SideEffect(ctx, func(workflow.Context) any { return e.opts })
	if err := v.Get(&opts); err != nil {
		panic(fmt.Sprintf("decode recorded options: %v", err)) // fails the task; retried
	}
	return opts
}

// projectionEnabled records, when it changes, whether this worker projects.
func (e *Entity) projectionEnabled(ctx workflow.Context) bool {
	var enabled bool
	v := workflow.MutableSideEffect(ctx, "projectionEnabled",
		func(workflow.Context) any { return e.opts.Project },
		func(a, b any) bool { return a.(bool) == b.(bool) })
	if err := v.Get(&enabled); err != nil {
		panic(fmt.Sprintf("decode recorded projection flag: %v", err))
	}
	return enabled
}

// applyLogged applies kind, counts it, and reports whether a flag changed.
func applyLogged(logger interface{ Error(string, ...any) }, metrics client.MetricsHandler, s *State, kind CommandKind, at time.Time) bool {
	changed, err := s.Apply(kind, at)
	tag := string(kind)
	if err != nil {
		// Only a hand-made signal can carry an unknown kind (updates are
		// validated); skipping it keeps the entity serving.
		logger.Error("Ignoring invalid command", "Error", err)
		tag = "invalid"
	}
	metrics.WithTags(map[string]string{"command": tag}).Counter(MetricCommands).Inc(1)
	if changed {
		metrics.Counter(MetricStateChanges).Inc(1)
	}
	return changed
}

func continueAsNewDue(ctx workflow.Context, budget int) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || budget > 0 && info.GetCurrentHistoryLength() >= budget
}

func registerQueries(ctx workflow.Context, s *State) error {
	if err := workflow.SetQueryHandler(ctx, QueryGetAllStates, func() (State, error) { return *s, nil }); err != nil {
		return fmt.Errorf("register query %s: %w", QueryGetAllStates, err)
	}
	if err := workflow.SetQueryHandler(ctx, QueryIsArtifactReadByUser, func() (bool, error) { return s.ArtifactRead, nil }); err != nil {
		return fmt.Errorf("register query %s: %w", QueryIsArtifactReadByUser, err)
	}
	if err := workflow.SetQueryHandler(ctx, QueryIsArtifactInUserFeed, func() (bool, error) { return s.ArtifactInUserFeed, nil }); err != nil {
		return fmt.Errorf("register query %s: %w", QueryIsArtifactInUserFeed, err)
	}
	return nil
}
