package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/activities"
)

// State is what the queries of one pair answer.
type State struct {
	ArtifactRead       bool `json:"artifactRead"`
	ArtifactInUserFeed bool `json:"artifactInUserFeed"`

	// Version grows by one with every change of the two flags over the
	// entity's whole life (it is carried across continue-as-new), so a newer
	// state always has a higher version.
	Version uint64 `json:"version"`
	// CommandsApplied counts every command applied over the entity's life,
	// whether it changed a flag or not: exactly one per accepted signal.
	CommandsApplied uint64 `json:"commandsApplied"`
	// Run is 1 in the entity's first run and grows by one at each
	// continue-as-new.
	Run uint64 `json:"run"`

	// ArtifactReadChangedAt and ArtifactInUserFeedChangedAt are when each
	// flag last changed (workflow time). Zero when unknown: never changed,
	// or changed by a run of history version 1 (see ChangeFieldChangedAt).
	ArtifactReadChangedAt       time.Time `json:"artifactReadChangedAt,omitzero"`
	ArtifactInUserFeedChangedAt time.Time `json:"artifactInUserFeedChangedAt,omitzero"`
}

// Apply changes the state as the command says, at time at (zero: not
// recorded); it reports whether a flag changed. Every command is idempotent:
// applying it twice in a row changes nothing the second time.
func (s *State) Apply(kind CommandKind, at time.Time) (changed bool, err error) {
	read, inFeed := s.ArtifactRead, s.ArtifactInUserFeed
	switch kind {
	case SetArtifactReadByUser:
		read = true
	case SetArtifactAddedToUserFeed:
		inFeed = true
	case SetArtifactRemovedFromUserFeed:
		inFeed = false
	default:
		return false, fmt.Errorf("unknown command kind %q", kind)
	}
	s.CommandsApplied++
	if !at.IsZero() {
		if read != s.ArtifactRead {
			s.ArtifactReadChangedAt = at
		}
		if inFeed != s.ArtifactInUserFeed {
			s.ArtifactInUserFeedChangedAt = at
		}
	}
	changed = read != s.ArtifactRead || inFeed != s.ArtifactInUserFeed
	if changed {
		s.ArtifactRead, s.ArtifactInUserFeed = read, inFeed
		s.Version++
	}
	return changed, nil
}

// StartState is the state a run begins with: the carried state, one run on.
// A run's state is StartState of its input with every command of its history
// applied in order, which is how the state of a closed run is recovered.
func StartState(in EntityInput) State {
	s := in.State
	s.Run++
	return s
}

// EntityInput is the input of every run of an entity.
type EntityInput struct {
	UserID     string `json:"userId"`
	ArtifactID int64  `json:"artifactId"`
	// State carried over from the previous run (continue-as-new, or the
	// re-creation of a closed entity); zero for a new entity.
	State State `json:"state"`
	// Projection is how far the read model had caught up.
	Projection ProjectionProgress `json:"projection"`
}

// ProjectionProgress is the read model's progress, carried across runs.
type ProjectionProgress struct {
	// Version is the newest state version known to be in the read model.
	Version uint64 `json:"version"`
	// ChangedAt is when the state last changed (zero if unknown), to
	// measure the projection lag.
	ChangedAt time.Time `json:"changedAt"`
}

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
	// Projection tunes the projection activity's timeout and retries.
	Projection activities.RetryOptions `json:"projection"`
}

// rejectedProjectionRetry is how long a run waits, when the read model
// rejected a projection, before it tries again (if nothing changed first).
const rejectedProjectionRetry = 10 * time.Minute

// Entity is the entity workflow. Register Entity.Run under
// EntityWorkflowName.
type Entity struct {
	opts Options
}

// NewEntity returns the entity workflow with the given options.
func NewEntity(opts Options) *Entity { return &Entity{opts: opts} }

// Run is one run of an entity: it applies commands in arrival order, answers
// queries, projects changes to the read model, and continues as new, carrying
// its state, when its history grows past the budget. It never completes on
// its own.
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
	changedAt := func() time.Time {
		if fieldTimes {
			return workflow.Now(ctx)
		}
		return time.Time{}
	}
	opts := e.recordOptions(ctx)
	p := &projector{key: in, state: &s, progress: in.Projection, opts: opts.Projection}
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

	commands := workflow.GetSignalChannel(ctx, CommandSignalName)
	for {
		var cmd Command
		commands.Receive(ctx, &cmd)
		if !cancellationLogged && cancellation.Err() != nil {
			logger.Warn("Ignoring cancellation request: entity workflows run until terminated")
			cancellationLogged = true
		}
		metrics := workflow.GetMetricsHandler(ctx)
		changed := applyLogged(logger, metrics, &s, cmd, changedAt())
		// Apply every command already delivered with this workflow task, so
		// that a continue-as-new below carries all of them.
		for commands.ReceiveAsync(&cmd) {
			changed = applyLogged(logger, metrics, &s, cmd, changedAt()) || changed
		}
		if changed {
			p.progress.ChangedAt = workflow.Now(ctx)
			project()
		}
		if !continueAsNewDue(ctx, opts.MaxHistoryEvents) {
			continue
		}
		// No update handler exists today; waiting keeps this correct if one
		// is added. A signal that arrives after this point and before the
		// run closes makes the server reject the continue-as-new and hand
		// the signal to a retried workflow task, which applies it first. A
		// projection still running is abandoned: the next run redoes it.
		if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
			return err
		}
		info := workflow.GetInfo(ctx)
		logger.Info("Continuing as new",
			"HistoryLength", info.GetCurrentHistoryLength(),
			"Suggested", info.GetContinueAsNewSuggested(),
			"Run", s.Run, "Version", s.Version, "CommandsApplied", s.CommandsApplied,
			"ProjectedVersion", p.progress.Version)
		workflow.GetMetricsHandler(ctx).Counter(MetricContinueAsNew).Inc(1)
		return workflow.NewContinueAsNewError(ctx, EntityWorkflowName, EntityInput{
			UserID:     in.UserID,
			ArtifactID: in.ArtifactID,
			State:      s,
			Projection: p.progress,
		})
	}
}

// projector writes the latest state to the read model whenever it is ahead
// of what was written. Changes made while a projection runs coalesce: the
// next projection writes the state as it is then.
type projector struct {
	key      EntityInput
	state    *State
	progress ProjectionProgress
	opts     activities.RetryOptions
}

func (p *projector) run(ctx workflow.Context) {
	logger := workflow.GetLogger(ctx)
	for {
		// The context is disconnected from cancellation: Await cannot fail.
		_ = workflow.Await(ctx, func() bool { return p.state.Version > p.progress.Version })
		in := activities.ProjectionInput{
			UserID: p.key.UserID, ArtifactID: p.key.ArtifactID,
			ArtifactRead: p.state.ArtifactRead, ArtifactInUserFeed: p.state.ArtifactInUserFeed,
			Version: p.state.Version, ChangedAt: p.progress.ChangedAt,
		}
		if err := activities.ExecuteProjectState(ctx, p.opts, in).Get(ctx, nil); err != nil {
			// Only a rejection ends the activity's unlimited retries.
			logger.Error("Read model rejected the projection; trying again after the next change or a pause",
				"Version", in.Version, "Pause", rejectedProjectionRetry, "Error", err)
			_, _ = workflow.AwaitWithTimeout(ctx, rejectedProjectionRetry, func() bool { return p.state.Version > in.Version })
			continue
		}
		p.progress.Version = in.Version
		logger.Debug("Projected", "Version", in.Version, "Lag", workflow.Now(ctx).Sub(in.ChangedAt))
	}
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

// applyLogged applies cmd, counts it, and reports whether a flag changed.
func applyLogged(logger interface{ Error(string, ...any) }, metrics client.MetricsHandler, s *State, cmd Command, at time.Time) bool {
	changed, err := s.Apply(cmd.Kind, at)
	kind := string(cmd.Kind)
	if err != nil {
		// Only a hand-made signal can carry an unknown kind (the API sends
		// known kinds only); skipping it keeps the entity serving.
		logger.Error("Ignoring invalid command", "Error", err)
		kind = "invalid"
	}
	metrics.WithTags(map[string]string{"command": kind}).Counter(MetricCommands).Inc(1)
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
