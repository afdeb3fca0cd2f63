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
	// Project writes every state change to the read model. A run reads it
	// when it first has something to project and records it then (a
	// mutable side effect): a run that started projecting keeps projecting,
	// and one that found it off reads it again at its next change, so
	// enabling the read model reaches idle entities at their next write.
	Project bool `json:"-"`
	// HistoryVersion, when set, is recorded in every run this worker starts
	// and decides the run's behaviour without a version marker: the worker
	// is versioned (Worker Versioning, pinned runs), so a run is executed by
	// one build for its whole life and replayed only by the same or newer
	// code (see historyVersion). Zero (an unversioned worker): the run
	// decides with workflow.GetVersion as history versions 1 to 4 did.
	HistoryVersion int `json:"historyVersion,omitempty"`
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
	// The options are recorded first: a run recorded by a versioned worker
	// carries its history version in them. (Runs of versions 1 to 4 recorded
	// them after their version markers; replay reads markers and side
	// effects from history whatever the order, and a version marker is no
	// command to match, so the order changes nothing for them.)
	opts := e.recordOptions(ctx)
	rv := decideVersion(ctx, opts)
	fieldTimes, v3, v4, v5 := rv.fieldTimes, rv.v3, rv.v4, rv.v5
	changedAt := func() time.Time {
		if fieldTimes {
			return workflow.Now(ctx)
		}
		return time.Time{}
	}
	if v3 {
		if err := upsertHistoryVersion(ctx, rv.historyVersion); err != nil {
			return err
		}
	}
	p := &projector{key: in, state: &s, progress: in.Projection, opts: opts.Projection, v3: v3}
	// A forced projection the previous run did not finish is carried (v5).
	p.force, p.progress.Forced = v5 && in.Projection.Forced, false
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
	if s.Version > p.progress.Version || p.force {
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
			res, repeated, changed := applyRequest(&s, &keys, req, workflow.Now(ctx), apply)
			switch {
			case repeated:
				// A retry answered from the records; its update events
				// still count toward the history budget (v5).
				updated = updated || v5
				return res, nil
			case changed:
				stateChanged()
			default:
				unchanged()
			}
			updated = true
			return res, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req CommandRequest) error {
			return validate(s, keys, req, workflow.Now(ctx))
		}},
	); err != nil {
		return fmt.Errorf("register update %s: %w", CommandUpdateName, err)
	}

	upgrade := false
	if err := workflow.SetUpdateHandler(ctx, UpgradeUpdateName, func(ctx workflow.Context, req UpgradeRequest) error {
		logger.Info("Upgrade requested: continuing as new", "Reason", req.Reason)
		upgrade = true
		return nil
	}); err != nil {
		return fmt.Errorf("register update %s: %w", UpgradeUpdateName, err)
	}

	commands := workflow.GetSignalChannel(ctx, CommandSignalName)
	for {
		// The context is disconnected from cancellation: Await cannot fail.
		_ = workflow.Await(ctx, func() bool {
			return commands.Len() > 0 || updated || p.pauseEnded || upgrade
		})
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
		if !upgrade && !continueAsNewDue(ctx, opts.MaxHistoryEvents) {
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
			"NewTargetVersion", info.GetTargetWorkerDeploymentVersionChanged(), "UpgradeRequested", upgrade,
			"Run", s.Run, "Version", s.Version, "CommandsApplied", s.CommandsApplied,
			"ProjectedVersion", p.progress.Version)
		metrics.Counter(MetricContinueAsNew).Inc(1)
		progress := p.progress
		progress.Forced = v5 && p.force
		// The next run starts on the deployment's current version (Worker
		// Versioning; an unversioned run ignores it): a pinned entity moves
		// to new code only here, never by replaying on another build.
		return workflow.NewContinueAsNewErrorWithOptions(ctx,
			workflow.ContinueAsNewErrorOptions{InitialVersioningBehavior: workflow.ContinueAsNewVersioningBehaviorAutoUpgrade},
			EntityWorkflowName, EntityInput{
				UserID:      in.UserID,
				ArtifactID:  in.ArtifactID,
				State:       s,
				Projection:  progress,
				Idempotency: keys,
			})
	}
}

// runVersion is what a run decided at its start and keeps for its whole
// life: its history version and the changes it takes.
type runVersion struct {
	historyVersion int
	fieldTimes     bool // ChangeFieldChangedAt (version 2)
	v3             bool // ChangeLocalProjection
	v4             bool // ChangeProjectNewLife
	v5             bool // version 5 (recorded in the options)
}

// decideVersion reads the run's version from its history only, never from a
// constant compared at replay: the history version recorded in its options
// (a versioned worker started it: every change up to it applies), or else
// the GetVersion markers that the code that started it recorded (versions 1
// to 4, decided change by change as that code did). A new run of an
// unversioned worker records the markers of version 4 and behaves as
// version 4, so an unversioned fleet in a rolling deploy replays it on the
// previous build too.
func decideVersion(ctx workflow.Context, opts Options) runVersion {
	if v := opts.HistoryVersion; v > 0 {
		if v > HistoryVersion {
			// A newer build started this run and only such a build can run
			// it: fail the workflow task (retried), never the entity.
			panic(fmt.Sprintf("run recorded by history version %d: this code knows up to %d", v, HistoryVersion))
		}
		return recordedVersion(v)
	}
	fieldTimes := workflow.GetVersion(ctx, ChangeFieldChangedAt, workflow.DefaultVersion, 1) >= 1
	v3 := workflow.GetVersion(ctx, ChangeLocalProjection, workflow.DefaultVersion, 1) >= 1
	v4 := v3 && workflow.GetVersion(ctx, ChangeProjectNewLife, workflow.DefaultVersion, 1) >= 1
	return markedVersion(fieldTimes, v3, v4)
}

// recordedVersion is the version of a run that recorded history version v.
func recordedVersion(v int) runVersion {
	return runVersion{historyVersion: v, fieldTimes: v >= 2, v3: v >= 3, v4: v >= 4, v5: v >= 5}
}

// markedVersion is the version of a run whose GetVersion markers took the
// given changes.
func markedVersion(fieldTimes, v3, v4 bool) runVersion {
	rv := runVersion{historyVersion: 1, fieldTimes: fieldTimes, v3: v3, v4: v4}
	switch {
	case v4:
		rv.historyVersion = 4
	case v3:
		rv.historyVersion = 3
	case fieldTimes:
		rv.historyVersion = 2
	}
	return rv
}

// upsertHistoryVersion keeps SearchAttributeHistoryVersion as the code of
// each history version did, which is a function of the run's history: its
// start attributes (the attribute the API stamped, or the value carried by
// a continue-as-new) and its history version hv. Versions 3 and 4 set the
// attribute to their own version when the run carried another one, and so
// does a run of versions 3 and 4 replayed here. From version 5 the
// attribute is no longer kept (the API stopped stamping it; Worker
// Versioning's TemporalWorkerDeploymentVersion tells which build runs an
// entity): a run that carries it removes it, unless it carries 4, which a
// version-4 build replaying it would leave alone.
func upsertHistoryVersion(ctx workflow.Context, hv int) error {
	carried, ok := workflow.GetTypedSearchAttributes(ctx).GetInt64(SearchAttributeHistoryVersion)
	var update temporal.SearchAttributeUpdate
	switch historyVersionUpdate(carried, ok, hv) {
	case attributeKept:
		return nil
	case attributeSet:
		update = SearchAttributeHistoryVersion.ValueSet(int64(hv))
	case attributeRemoved:
		update = SearchAttributeHistoryVersion.ValueUnset()
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, update); err != nil {
		return fmt.Errorf("upsert %s: %w", SearchAttributeHistoryVersion.GetName(), err)
	}
	return nil
}

// attributeChange is what a run does to SearchAttributeHistoryVersion.
type attributeChange int

const (
	attributeKept    attributeChange = iota
	attributeSet                     // to the run's history version
	attributeRemoved                 // unset
)

// historyVersionUpdate is upsertHistoryVersion's decision for a run of
// history version hv that carries the attribute (ok) with value carried.
func historyVersionUpdate(carried int64, ok bool, hv int) attributeChange {
	switch {
	case !ok:
		return attributeKept
	case hv <= 4 && carried != int64(hv):
		return attributeSet
	case hv > 4 && carried != 4:
		return attributeRemoved
	}
	return attributeKept
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

// continueAsNewDue reports whether the run should hand over to a new run:
// its history is due (the server suggests it, or the budget is reached), or
// the deployment has a new current version for this pinned run (Worker
// Versioning), which the next run starts on.
func continueAsNewDue(ctx workflow.Context, budget int) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || budget > 0 && info.GetCurrentHistoryLength() >= budget ||
		info.GetTargetWorkerDeploymentVersionChanged()
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
