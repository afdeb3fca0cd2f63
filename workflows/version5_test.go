package workflows

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// v5Opts are the options of a versioned worker (it records the history
// version in every run it starts).
func v5Opts(opts Options) Options {
	opts.HistoryVersion = HistoryVersion
	return opts
}

// The history-version search attribute is kept as each version's code kept
// it, read from the run's history only: its start attributes and its own
// history version. A rule that compared with a constant (today's version)
// broke every run of the previous version at replay (TMPRL1100).
func TestHistoryVersionAttributeFollowsTheRunsOwnVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		carried int64 // 0: the run carries no attribute
		version int
		want    attributeChange
	}{
		{"no attribute, version 4", 0, 4, attributeKept},
		{"no attribute, version 5", 0, 5, attributeKept},
		{"a version-3 run stamped 3 by its API", 3, 3, attributeKept},
		{"a version-3 run that carried 2", 2, 3, attributeSet},
		{"a version-4 run stamped 4", 4, 4, attributeKept},
		{"a version-4 run that carried 3 (continued from version 3)", 3, 4, attributeSet},
		{"a version-3 run stamped 4 by a newer API", 4, 3, attributeSet},
		{"a version-5 run that carried 4: a version-4 build replaying it upserts nothing", 4, 5, attributeKept},
		{"a version-5 run that carried 3: the attribute is removed", 3, 5, attributeRemoved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, historyVersionUpdate(tc.carried, tc.carried != 0, tc.version))
		})
	}
}

// A run recorded by a newer build than this code fails its workflow task
// (retried, so a newer worker can take it), never the entity.
func TestRunOfANewerBuildFailsOnlyItsTask(t *testing.T) {
	t.Parallel()
	opts := v5Opts(Options{})
	opts.HistoryVersion = HistoryVersion + 1
	h := newHarness(t, opts)
	h.env.ExecuteWorkflow(EntityWorkflowName, input)
	err := h.env.GetWorkflowError()
	var panicErr *temporal.PanicError
	require.True(t, errors.As(err, &panicErr), "a panic fails the task, got %v", err)
	require.Contains(t, panicErr.Error(), "this code knows up to")
}

// Version 5: an idempotent retry's update events count toward the history
// budget, so a stream of retries cannot grow a run past it.
func TestVersion5IdempotentRetryChecksTheBudget(t *testing.T) {
	t.Parallel()
	keyed := CommandRequest{Kind: SetArtifactReadByUser, IdempotencyKey: "k"}
	h := newHarness(t, v5Opts(Options{MaxHistoryEvents: 100}))
	h.update(nil, keyed)
	h.at(func() { h.env.SetCurrentHistoryLength(100) })
	h.update(nil, keyed) // answered from the records: applies nothing
	h.env.ExecuteWorkflow(EntityWorkflowName, input)
	next := carried(t, h.env.GetWorkflowError())
	require.Equal(t, uint64(1), next.State.CommandsApplied, "the retry applied nothing")
}

// Before version 5 a retry did not check the budget: their replays must not
// change.
func TestVersion4IdempotentRetryLeavesTheBudgetAlone(t *testing.T) {
	t.Parallel()
	keyed := CommandRequest{Kind: SetArtifactReadByUser, IdempotencyKey: "k"}
	h := newHarness(t, Options{MaxHistoryEvents: 100})
	h.update(nil, keyed)
	h.at(func() { h.env.SetCurrentHistoryLength(100) })
	h.update(nil, keyed)
	h.at(func() { require.Equal(t, uint64(1), h.query().Run, "still running") })
	next := h.finish(input, SetArtifactReadByUser)
	require.Equal(t, uint64(2), next.State.CommandsApplied)
}

// Version 5: a new life's forced first projection that the run could not
// finish (the read model down) is carried to the next run, which makes it
// at its start; before, the next run waited for a command.
func TestVersion5CarriesAForcedProjection(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{unavailable: 1 << 30}
	h := newHarness(t, v5Opts(projectOpts)).withReadModel(rm)
	h.update(nil, CommandRequest{Kind: SetArtifactRemovedFromUserFeed}) // changes nothing: forced
	next := h.finish(input, SetArtifactRemovedFromUserFeed)
	require.True(t, next.Projection.Forced, "the owed projection is carried")
	require.Equal(t, uint64(0), next.State.Version)

	rm2 := &memoryReadModel{}
	h2 := newHarness(t, v5Opts(projectOpts)).withReadModel(rm2)
	h2.at(func() { require.Equal(t, []uint64{0}, rm2.versions(), "made at the start, before any command") })
	after := h2.finish(next, SetArtifactRemovedFromUserFeed)
	require.False(t, after.Projection.Forced)
	require.NotZero(t, after.Projection.Timestamp)
}

// Runs of unversioned workers stay version 4: nothing is carried, and a
// carried flag is ignored, as a version-4 build replaying them would.
func TestVersion4CarriesNoForcedProjection(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{unavailable: 1 << 30}
	h := newHarness(t, projectOpts).withReadModel(rm)
	h.update(nil, CommandRequest{Kind: SetArtifactRemovedFromUserFeed})
	next := h.finish(input, SetArtifactRemovedFromUserFeed)
	require.False(t, next.Projection.Forced)

	rm2 := &memoryReadModel{}
	h2 := newHarness(t, projectOpts).withReadModel(rm2)
	next.Projection.Forced = true
	h2.at(func() { require.Empty(t, rm2.versions(), "no projection at the start") })
	h2.finish(next, SetArtifactReadByUser)
}

// The upgrade update makes the entity continue as new at once, the next run
// starting on the deployment's current version (AutoUpgrade); its commands
// are carried.
func TestUpgradeRequestContinuesAsNew(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{{}, v5Opts(Options{})} {
		h := newHarness(t, opts)
		h.update(nil, CommandRequest{Kind: SetArtifactReadByUser})
		h.at(func() {
			h.env.SignalWorkflowSkippingWorkflowTask(CommandSignalName, Command{Kind: SetArtifactAddedToUserFeed})
			h.env.UpdateWorkflow(UpgradeUpdateName, "", &testsuite.TestUpdateCallback{
				OnReject:   func(err error) { require.Fail(t, "upgrade rejected", "%v", err) },
				OnComplete: func(_ any, err error) { require.NoError(t, err) },
			}, UpgradeRequest{Reason: "test"})
		})
		h.env.ExecuteWorkflow(EntityWorkflowName, input)
		err := h.env.GetWorkflowError()
		next := carried(t, err)
		require.Equal(t, State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 2, CommandsApplied: 2, Run: 1}, core(next.State))
		var can *workflow.ContinueAsNewError
		require.True(t, errors.As(err, &can))
		require.EqualValues(t, workflow.ContinueAsNewVersioningBehaviorAutoUpgrade, can.InitialVersioningBehavior)
	}
}
