package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/internal/projection"
)

var input = EntityInput{UserID: "Mike", ArtifactID: 1}

// harness drives one run of the entity in the SDK test environment. Steps run
// one simulated second apart; finish() ends the run with a continue-as-new
// and returns the input it carries to the next run.
type harness struct {
	t    *testing.T
	env  *testsuite.TestWorkflowEnvironment
	step time.Duration
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(NewEntity(opts).Run, workflow.RegisterOptions{Name: EntityWorkflowName})
	return &harness{t: t, env: env}
}

// withReadModel registers rm as the projection activity.
func (h *harness) withReadModel(rm *memoryReadModel) *harness {
	h.env.RegisterActivityWithOptions(rm.ProjectState, activity.RegisterOptions{Name: projection.Name})
	return h
}

// update sends each command as an update, as the API does, and checks it
// was accepted; results are appended to *results when results is not nil.
func (h *harness) update(results *[]CommandResult, reqs ...CommandRequest) {
	h.at(func() {
		for _, req := range reqs {
			h.env.UpdateWorkflow(CommandUpdateName, "", &testsuite.TestUpdateCallback{
				OnReject: func(err error) { require.Fail(h.t, "update rejected", "%v", err) },
				OnComplete: func(v any, err error) {
					require.NoError(h.t, err)
					if results != nil {
						*results = append(*results, v.(CommandResult))
					}
				},
			}, req)
		}
	})
}

// updateRejected sends req as an update and returns its rejection (nil if
// accepted) through *rejection.
func (h *harness) updateRejected(rejection *error, req CommandRequest) {
	h.at(func() {
		*rejection = nil
		h.env.UpdateWorkflow(CommandUpdateName, "", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { *rejection = err },
			OnComplete: func(any, error) {},
		}, req)
	})
}

func (h *harness) at(f func()) {
	h.step += time.Second
	h.env.RegisterDelayedCallback(f, h.step)
}

func (h *harness) signal(kinds ...CommandKind) {
	h.at(func() {
		for _, k := range kinds {
			h.env.SignalWorkflow(CommandSignalName, Command{Kind: k})
		}
	})
}

// batch delivers the commands in one workflow task, in this order.
func (h *harness) batch(kinds ...CommandKind) {
	h.at(func() {
		for _, k := range kinds[:len(kinds)-1] {
			h.env.SignalWorkflowSkippingWorkflowTask(CommandSignalName, Command{Kind: k})
		}
		h.env.SignalWorkflow(CommandSignalName, Command{Kind: kinds[len(kinds)-1]})
	})
}

// expectState checks the state; change times are checked by their own tests.
func (h *harness) expectState(want State) {
	h.at(func() {
		require.Equal(h.t, want, core(h.query()))
	})
}

// core is s without the change times.
func core(s State) State {
	s.ArtifactReadChangedAt, s.ArtifactInUserFeedChangedAt = time.Time{}, time.Time{}
	return s
}

func (h *harness) query() State {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryGetAllStates)
	require.NoError(h.t, err)
	var s State
	require.NoError(h.t, v.Get(&s))
	return s
}

func (h *harness) queryBool(name string) bool {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(name)
	require.NoError(h.t, err)
	var b bool
	require.NoError(h.t, v.Get(&b))
	return b
}

// finish triggers the server's continue-as-new suggestion with one more
// command (trigger) and returns what the run carried over.
func (h *harness) finish(in EntityInput, trigger CommandKind) EntityInput {
	h.t.Helper()
	h.at(func() {
		h.env.SetContinueAsNewSuggested(true)
		h.env.SignalWorkflow(CommandSignalName, Command{Kind: trigger})
	})
	h.env.ExecuteWorkflow(EntityWorkflowName, in)
	return carried(h.t, h.env.GetWorkflowError())
}

func carried(t *testing.T, err error) EntityInput {
	t.Helper()
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "want a continue-as-new, got %v", err)
	require.Equal(t, EntityWorkflowName, can.WorkflowType.Name)
	var next EntityInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	return next
}

func TestEachCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.expectState(State{Run: 1})
	h.signal(SetArtifactReadByUser)
	h.expectState(State{ArtifactRead: true, Version: 1, CommandsApplied: 1, Run: 1})
	h.at(func() {
		require.True(t, h.queryBool(QueryIsArtifactReadByUser))
		require.False(t, h.queryBool(QueryIsArtifactInUserFeed))
	})
	h.signal(SetArtifactAddedToUserFeed)
	h.expectState(State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 2, CommandsApplied: 2, Run: 1})
	h.at(func() { require.True(t, h.queryBool(QueryIsArtifactInUserFeed)) })
	h.signal(SetArtifactRemovedFromUserFeed)
	h.expectState(State{ArtifactRead: true, Version: 3, CommandsApplied: 3, Run: 1})
	h.at(func() { require.False(t, h.queryBool(QueryIsArtifactInUserFeed)) })

	next := h.finish(input, SetArtifactRemovedFromUserFeed)
	require.Equal(t, "Mike", next.UserID)
	require.Equal(t, int64(1), next.ArtifactID)
	require.Equal(t, State{ArtifactRead: true, Version: 3, CommandsApplied: 4, Run: 1}, core(next.State))
}

func TestRepeatedCommandsAreIdempotent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.signal(SetArtifactReadByUser, SetArtifactReadByUser, SetArtifactReadByUser)
	h.expectState(State{ArtifactRead: true, Version: 1, CommandsApplied: 3, Run: 1})
	h.signal(SetArtifactAddedToUserFeed, SetArtifactAddedToUserFeed)
	h.expectState(State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 2, CommandsApplied: 5, Run: 1})
	h.signal(SetArtifactRemovedFromUserFeed, SetArtifactRemovedFromUserFeed)
	h.expectState(State{ArtifactRead: true, Version: 3, CommandsApplied: 7, Run: 1})
	// Removing what is not in the feed changes nothing.
	next := h.finish(input, SetArtifactRemovedFromUserFeed)
	require.Equal(t, State{ArtifactRead: true, Version: 3, CommandsApplied: 8, Run: 1}, core(next.State))
}

// Commands delivered in one workflow task are applied in history order.
func TestCommandsInOneTaskKeepTheirOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.batch(SetArtifactAddedToUserFeed, SetArtifactRemovedFromUserFeed)
	h.expectState(State{Version: 2, CommandsApplied: 2, Run: 1})
	h.batch(SetArtifactRemovedFromUserFeed, SetArtifactReadByUser, SetArtifactAddedToUserFeed)
	h.expectState(State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 4, CommandsApplied: 5, Run: 1})
	next := h.finish(input, SetArtifactReadByUser)
	require.True(t, next.State.ArtifactInUserFeed)
}

func TestUnknownCommandIsIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.signal(CommandKind("deleteEverything"), SetArtifactReadByUser)
	h.expectState(State{ArtifactRead: true, Version: 1, CommandsApplied: 1, Run: 1})
	next := h.finish(input, SetArtifactReadByUser)
	require.Equal(t, uint64(2), next.State.CommandsApplied)
}

func TestCancellationIsIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.signal(SetArtifactReadByUser)
	h.at(func() { h.env.CancelWorkflow() })
	h.signal(SetArtifactAddedToUserFeed)
	h.expectState(State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 2, CommandsApplied: 2, Run: 1})
	next := h.finish(input, SetArtifactAddedToUserFeed)
	require.Equal(t, State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 2, CommandsApplied: 3, Run: 1}, core(next.State))
}

// A chain of runs, each ended by the event budget, keeps the state and loses
// no command.
func TestContinueAsNewOnEventBudgetCarriesState(t *testing.T) {
	t.Parallel()
	const budget = 50
	in := input
	sequence := []CommandKind{SetArtifactAddedToUserFeed, SetArtifactReadByUser, SetArtifactRemovedFromUserFeed}
	for run := uint64(1); run <= 3; run++ {
		h := newHarness(t, Options{MaxHistoryEvents: budget})
		before := in.State
		h.signal(sequence[run-1])
		h.at(func() {
			s := h.query()
			require.Equal(t, run, s.Run)
			require.Equal(t, before.CommandsApplied+1, s.CommandsApplied)
		})
		h.at(func() {
			h.env.SetCurrentHistoryLength(budget)
			h.env.SignalWorkflow(CommandSignalName, Command{Kind: sequence[run-1]})
		})
		h.env.ExecuteWorkflow(EntityWorkflowName, in)
		in = carried(t, h.env.GetWorkflowError())
		require.Equal(t, run, in.State.Run)
		require.Equal(t, 2*run, in.State.CommandsApplied)
	}
	require.Equal(t, State{ArtifactRead: true, ArtifactInUserFeed: false, Version: 3, CommandsApplied: 6, Run: 3}, core(in.State))
}

func TestBelowBudgetDoesNotContinueAsNew(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxHistoryEvents: 1000})
	h.at(func() {
		h.env.SetCurrentHistoryLength(999)
		h.env.SignalWorkflow(CommandSignalName, Command{Kind: SetArtifactReadByUser})
	})
	// Still running: the query sees run 1, and only the suggestion ends it.
	h.expectState(State{ArtifactRead: true, Version: 1, CommandsApplied: 1, Run: 1})
	next := h.finish(input, SetArtifactReadByUser)
	require.Equal(t, uint64(2), next.State.CommandsApplied)
}

// Commands delivered in the same workflow task as the one that triggers the
// continue-as-new are applied before the hand-over, never dropped.
func TestCommandsRacingContinueAsNewAreCarried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.signal(SetArtifactReadByUser)
	h.at(func() {
		h.env.SetContinueAsNewSuggested(true)
		h.env.SignalWorkflowSkippingWorkflowTask(CommandSignalName, Command{Kind: SetArtifactAddedToUserFeed})
		h.env.SignalWorkflowSkippingWorkflowTask(CommandSignalName, Command{Kind: SetArtifactRemovedFromUserFeed})
		h.env.SignalWorkflow(CommandSignalName, Command{Kind: SetArtifactAddedToUserFeed})
	})
	h.env.ExecuteWorkflow(EntityWorkflowName, input)
	next := carried(t, h.env.GetWorkflowError())
	require.Equal(t, State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 4, CommandsApplied: 4, Run: 1}, core(next.State))
}

func TestCarriedStateSeedsTheNextRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	prev := State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 7, CommandsApplied: 40, Run: 5}
	h.expectState(State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 7, CommandsApplied: 40, Run: 6})
	h.signal(SetArtifactRemovedFromUserFeed)
	h.expectState(State{ArtifactRead: true, Version: 8, CommandsApplied: 41, Run: 6})
	next := h.finish(EntityInput{UserID: "Mike", ArtifactID: 1, State: prev}, SetArtifactReadByUser)
	require.Equal(t, State{ArtifactRead: true, Version: 8, CommandsApplied: 42, Run: 6}, core(next.State))
}

// History version 2 (ChangeFieldChangedAt): each flag's change time is the
// workflow time of the task that applied the change.
func TestFieldChangeTimesAreRecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	var readAt, feedAt time.Time
	h.at(func() {
		readAt = h.env.Now()
		h.env.SignalWorkflow(CommandSignalName, Command{Kind: SetArtifactReadByUser})
	})
	h.at(func() {
		feedAt = h.env.Now()
		h.env.SignalWorkflow(CommandSignalName, Command{Kind: SetArtifactAddedToUserFeed})
	})
	h.signal(SetArtifactReadByUser) // no change: the read time stays
	h.at(func() {
		s := h.query()
		require.Equal(t, readAt.UTC(), s.ArtifactReadChangedAt.UTC())
		require.Equal(t, feedAt.UTC(), s.ArtifactInUserFeedChangedAt.UTC())
		require.True(t, feedAt.After(readAt))
	})
	next := h.finish(input, SetArtifactAddedToUserFeed)
	require.Equal(t, feedAt.UTC(), next.State.ArtifactInUserFeedChangedAt.UTC(), "carried across continue-as-new")
}

// A run of history version 1 (started before ChangeFieldChangedAt) keeps
// applying commands without change times, as it did when it was recorded.
func TestVersion1RunsRecordNoChangeTimes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.env.OnGetVersion(ChangeFieldChangedAt, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.signal(SetArtifactReadByUser, SetArtifactAddedToUserFeed)
	h.at(func() {
		s := h.query()
		require.True(t, s.ArtifactReadChangedAt.IsZero())
		require.True(t, s.ArtifactInUserFeedChangedAt.IsZero())
		require.Equal(t, State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 2, CommandsApplied: 2, Run: 1}, s)
	})
	next := h.finish(input, SetArtifactRemovedFromUserFeed)
	require.True(t, next.State.ArtifactInUserFeedChangedAt.IsZero())
}
