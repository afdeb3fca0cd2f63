package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Every update answers the state right after its command.
func TestUpdateAnswersTheStateAfterItsCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	var results []CommandResult
	h.update(&results, CommandRequest{Kind: SetArtifactReadByUser}, CommandRequest{Kind: SetArtifactAddedToUserFeed},
		CommandRequest{Kind: SetArtifactAddedToUserFeed})
	h.at(func() {
		require.Len(t, results, 3)
		require.Equal(t, State{ArtifactRead: true, Version: 1, CommandsApplied: 1, Run: 1}, core(results[0].State))
		require.Equal(t, State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 2, CommandsApplied: 2, Run: 1}, core(results[1].State))
		require.Equal(t, State{ArtifactRead: true, ArtifactInUserFeed: true, Version: 2, CommandsApplied: 3, Run: 1}, core(results[2].State))
	})
	next := h.finish(input, SetArtifactRemovedFromUserFeed)
	require.Equal(t, uint64(3), next.State.Version)
}

// A command with an idempotency key applies once, within a run and across a
// continue-as-new; the retry answers the first result.
func TestIdempotencyKeyAppliesOnceAcrossContinueAsNew(t *testing.T) {
	t.Parallel()
	keyed := CommandRequest{Kind: SetArtifactAddedToUserFeed, IdempotencyKey: "k1"}
	h := newHarness(t, Options{})
	var results []CommandResult
	h.update(&results, keyed)
	h.update(&results, CommandRequest{Kind: SetArtifactRemovedFromUserFeed})
	h.update(&results, keyed) // a retry: must not add the artifact back
	h.at(func() {
		require.Len(t, results, 3)
		require.Equal(t, results[0], results[2], "the retry answers the first result")
		require.False(t, h.query().ArtifactInUserFeed)
	})
	next := h.finish(input, SetArtifactReadByUser)
	require.Len(t, next.Idempotency, 1, "the key is carried to the next run")

	h2 := newHarness(t, Options{})
	var after []CommandResult
	h2.update(&after, keyed)
	h2.at(func() {
		require.Len(t, after, 1)
		require.Equal(t, results[0], after[0], "answered from the carried record")
		s := h2.query()
		require.False(t, s.ArtifactInUserFeed, "not applied again")
		require.Equal(t, next.State.CommandsApplied, s.CommandsApplied)
	})
	h2.finish(next, SetArtifactReadByUser)
}

// Keys are remembered for IdempotencyWindow; the oldest beyond
// IdempotencyMaxRecords are forgotten.
func TestIdempotencyRecordsAreBounded(t *testing.T) {
	t.Parallel()
	var rs IdempotencyRecords
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range IdempotencyMaxRecords + 5 {
		rs.Remember(IdempotencyRecord{Key: string(rune('A' + i)), Kind: SetArtifactReadByUser, At: t0.Add(time.Duration(i) * time.Second)})
	}
	require.Len(t, rs, IdempotencyMaxRecords)
	_, ok := rs.Lookup("A", t0.Add(time.Minute))
	require.False(t, ok, "the oldest were dropped")
	last := string(rune('A' + IdempotencyMaxRecords + 4))
	_, ok = rs.Lookup(last, t0.Add(time.Hour))
	require.True(t, ok)
	_, ok = rs.Lookup(last, t0.Add(IdempotencyWindow+time.Hour))
	require.False(t, ok, "expired")
	rs.Remember(IdempotencyRecord{Key: "new", At: t0.Add(IdempotencyWindow + 2*time.Hour)})
	require.Len(t, rs, 1, "expired records are dropped")
}

func TestIdempotencyKeyReusedForAnotherCommandIsRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.update(nil, CommandRequest{Kind: SetArtifactAddedToUserFeed, IdempotencyKey: "k1"})
	var rejection error
	h.updateRejected(&rejection, CommandRequest{Kind: SetArtifactRemovedFromUserFeed, IdempotencyKey: "k1"})
	h.at(func() {
		requireRejected(t, rejection, ErrTypeIdempotencyKeyReused)
		require.True(t, h.query().ArtifactInUserFeed)
	})
	h.finish(input, SetArtifactReadByUser)
}

// A conditional command applies at its version only; a stale one is
// rejected with the current state in the error's details.
func TestConditionalCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	v0, v1 := uint64(0), uint64(1)
	var results []CommandResult
	h.update(&results, CommandRequest{Kind: SetArtifactAddedToUserFeed, IfVersion: &v0})
	var rejection error
	h.updateRejected(&rejection, CommandRequest{Kind: SetArtifactRemovedFromUserFeed, IfVersion: &v0})
	h.at(func() {
		appErr := requireRejected(t, rejection, ErrTypeVersionMismatch)
		var current State
		require.NoError(t, appErr.Details(&current))
		require.Equal(t, uint64(1), current.Version)
		require.True(t, current.ArtifactInUserFeed)
	})
	h.update(&results, CommandRequest{Kind: SetArtifactRemovedFromUserFeed, IfVersion: &v1})
	h.at(func() {
		require.Len(t, results, 2)
		require.Equal(t, uint64(2), results[1].State.Version)
	})
	h.finish(input, SetArtifactReadByUser)
}

func TestUnknownCommandUpdateIsRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	var rejection error
	h.updateRejected(&rejection, CommandRequest{Kind: "deleteEverything"})
	h.at(func() {
		requireRejected(t, rejection, ErrTypeInvalidCommand)
		require.Equal(t, uint64(0), h.query().CommandsApplied)
	})
	h.finish(input, SetArtifactReadByUser)
}

// History version 3 decodes every signal into a fresh value: a signal
// without a kind is ignored, not a repeat of the one before it.
func TestSignalWithoutKindIsIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.at(func() {
		h.env.SignalWorkflowSkippingWorkflowTask(CommandSignalName, Command{Kind: SetArtifactAddedToUserFeed})
		h.env.SignalWorkflow(CommandSignalName, map[string]any{})
	})
	h.expectState(State{ArtifactInUserFeed: true, Version: 1, CommandsApplied: 1, Run: 1})
	h.finish(input, SetArtifactReadByUser)
}

// Runs of versions 1 and 2 decoded a task's signals into one value; they
// must replay as they ran.
func TestVersion2SignalWithoutKindRepeatsThePreviousOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.env.OnGetVersion(ChangeLocalProjection, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.at(func() {
		h.env.SignalWorkflowSkippingWorkflowTask(CommandSignalName, Command{Kind: SetArtifactAddedToUserFeed})
		h.env.SignalWorkflow(CommandSignalName, map[string]any{})
	})
	h.expectState(State{ArtifactInUserFeed: true, Version: 1, CommandsApplied: 2, Run: 1})
	h.finish(input, SetArtifactReadByUser)
}

func requireRejected(t *testing.T, err error, errType string) *temporal.ApplicationError {
	t.Helper()
	require.Error(t, err, "the update was accepted")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an application error, got %v", err)
	require.Equal(t, errType, appErr.Type())
	return appErr
}
