package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
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
}

// Apply changes the state as the command says; it reports whether a flag
// changed. Every command is idempotent: applying it twice in a row changes
// nothing the second time.
func (s *State) Apply(kind CommandKind) (changed bool, err error) {
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
}

// Options tune the entity workflow; they are worker configuration.
type Options struct {
	// MaxHistoryEvents makes a run continue as new once its history holds
	// this many events, before the server suggests it (at about 4096 events
	// or 4 MiB). Zero leaves the decision to the server alone. Each run
	// records the value it uses, so changing it never breaks replay.
	MaxHistoryEvents int
}

// Entity is the entity workflow. Register Entity.Run under
// EntityWorkflowName.
type Entity struct {
	opts Options
}

// NewEntity returns the entity workflow with the given options.
func NewEntity(opts Options) *Entity { return &Entity{opts: opts} }

// Run is one run of an entity: it applies commands in arrival order, answers
// queries, and continues as new, carrying its state, when its history grows
// past the budget. It never completes on its own.
func (e *Entity) Run(ctx workflow.Context, in EntityInput) error {
	logger := workflow.GetLogger(ctx)
	// An entity is the only copy of its state: a cancellation request is
	// logged and otherwise ignored (terminate an entity to close it).
	workflow.Go(ctx, func(ctx workflow.Context) {
		ctx.Done().Receive(ctx, nil)
		logger.Warn("Ignoring cancellation request: entity workflows run until terminated")
	})
	ctx, _ = workflow.NewDisconnectedContext(ctx)

	s := StartState(in)
	if err := registerQueries(ctx, &s); err != nil {
		return err
	}
	budget := e.historyBudget(ctx)

	commands := workflow.GetSignalChannel(ctx, CommandSignalName)
	for {
		var cmd Command
		commands.Receive(ctx, &cmd)
		applyLogged(logger, &s, cmd)
		// Apply every command already delivered with this workflow task, so
		// that a continue-as-new below carries all of them.
		for commands.ReceiveAsync(&cmd) {
			applyLogged(logger, &s, cmd)
		}
		if !continueAsNewDue(ctx, budget) {
			continue
		}
		// No update handler exists today; waiting keeps this correct if one
		// is added. A signal that arrives after this point and before the
		// run closes makes the server reject the continue-as-new and hand
		// the signal to a retried workflow task, which applies it first.
		if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
			return err
		}
		info := workflow.GetInfo(ctx)
		logger.Info("Continuing as new",
			"HistoryLength", info.GetCurrentHistoryLength(),
			"Suggested", info.GetContinueAsNewSuggested(),
			"Run", s.Run, "Version", s.Version, "CommandsApplied", s.CommandsApplied)
		return workflow.NewContinueAsNewError(ctx, EntityWorkflowName, EntityInput{
			UserID:     in.UserID,
			ArtifactID: in.ArtifactID,
			State:      s,
		})
	}
}

func applyLogged(logger interface{ Error(string, ...any) }, s *State, cmd Command) {
	if _, err := s.Apply(cmd.Kind); err != nil {
		// Only a hand-made signal can carry an unknown kind (the API sends
		// known kinds only); skipping it keeps the entity serving.
		logger.Error("Ignoring invalid command", "Error", err)
	}
}

// historyBudget records MaxHistoryEvents in this run's history, so a replay
// on a worker configured differently makes the same decisions.
func (e *Entity) historyBudget(ctx workflow.Context) int {
	var budget int
	v := workflow.SideEffect(ctx, func(workflow.Context) any { return e.opts.MaxHistoryEvents })
	if err := v.Get(&budget); err != nil {
		// A recorded int always decodes; fall back to the server's suggestion.
		return 0
	}
	return budget
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
