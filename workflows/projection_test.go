package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/internal/projection"
)

// memoryReadModel is the projection activity over an in-memory row, keeping
// the activity's contract: it raises the timestamp above the row's when the
// input does not know the row (Previous nil). reject makes it refuse
// projections as Cassandra refuses a bad request; unavailable fails the next
// attempts as a Cassandra outage does.
type memoryReadModel struct {
	mu          sync.Mutex
	written     []projection.Input // successful projections, in order
	local       []bool             // whether each ran as a local activity
	rowStamp    int64              // the row's write timestamp
	reject      bool
	unavailable int
	attempts    int
}

var errUnavailable = errors.New("read model unavailable")

func (m *memoryReadModel) ProjectState(ctx context.Context, in projection.Input) (projection.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts++
	switch {
	case m.reject:
		return projection.Result{}, temporal.NewNonRetryableApplicationError("rejected", projection.ErrTypeRejected, nil)
	case m.unavailable > 0:
		m.unavailable--
		return projection.Result{}, errUnavailable
	}
	res := projection.Result{Timestamp: in.Timestamp}
	if in.Previous == nil && m.rowStamp >= in.Timestamp {
		res = projection.Result{Timestamp: m.rowStamp + 1, Adjusted: true}
	}
	m.rowStamp = res.Timestamp
	m.written = append(m.written, in)
	m.local = append(m.local, activity.GetInfo(ctx).IsLocalActivity)
	return res, nil
}

// counts returns how many attempts ran and whether each write ran locally.
func (m *memoryReadModel) counts() (attempts int, local []bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts, append([]bool(nil), m.local...)
}

func (m *memoryReadModel) setReject(v bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reject = v
}

func (m *memoryReadModel) versions() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uint64
	for _, in := range m.written {
		out = append(out, in.Version)
	}
	return out
}

func (m *memoryReadModel) last() projection.Input {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.written[len(m.written)-1]
}

var projectOpts = Options{Project: true, Projection: projection.Options{
	Timeout: 5 * time.Second, InitialInterval: time.Second, MaxInterval: 10 * time.Second,
	LocalTimeout: 2 * time.Second, TaskQueue: "projection-queue", RejectedPause: time.Minute,
}}

func TestEveryChangeIsProjected(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{}
	h := newHarness(t, projectOpts).withReadModel(rm)
	h.update(nil, CommandRequest{Kind: SetArtifactReadByUser})
	h.at(func() { require.Equal(t, []uint64{1}, rm.versions()) })
	h.update(nil, CommandRequest{Kind: SetArtifactReadByUser}) // no change, no projection
	h.signal(SetArtifactAddedToUserFeed)
	h.at(func() {
		require.Equal(t, []uint64{1, 2}, rm.versions())
		last := rm.last()
		require.Equal(t, projection.Flags{Read: true, InFeed: true}, last.Flags())
		require.Equal(t, "Mike", last.UserID)
		require.False(t, last.ChangedAt.IsZero())
		_, local := rm.counts()
		require.Equal(t, []bool{true, true}, local, "projected by a local activity in the changing task")
	})
	next := h.finish(input, SetArtifactAddedToUserFeed)
	require.Equal(t, uint64(2), next.Projection.Version, "the next run knows what is projected")
	require.Equal(t, rm.last().Timestamp, next.Projection.Timestamp, "and its projection clock")
}

// The projection clock: every projection's timestamp is above the previous
// one and at least the workflow's time in microseconds, so a pair that starts
// again from zero still outranks the rows of its earlier life.
func TestProjectionTimestampsGrowAndFollowTheClock(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{}
	h := newHarness(t, projectOpts).withReadModel(rm)
	start := h.env.Now()
	h.update(nil, CommandRequest{Kind: SetArtifactAddedToUserFeed}, CommandRequest{Kind: SetArtifactRemovedFromUserFeed},
		CommandRequest{Kind: SetArtifactAddedToUserFeed})
	h.update(nil, CommandRequest{Kind: SetArtifactReadByUser})
	h.at(func() {
		rm.mu.Lock()
		defer rm.mu.Unlock()
		require.NotEmpty(t, rm.written)
		prev := int64(0)
		for _, in := range rm.written {
			require.Greater(t, in.Timestamp, prev)
			require.GreaterOrEqual(t, in.Timestamp, start.UnixMicro())
			prev = in.Timestamp
		}
		require.Nil(t, rm.written[0].Previous, "the run's first projection reads the row")
		for i, in := range rm.written[1:] {
			require.Equal(t, rm.written[i].Flags(), *in.Previous, "later ones know what was written")
		}
	})
	next := h.finish(input, SetArtifactReadByUser)
	require.Equal(t, rm.last().Timestamp, next.Projection.Timestamp)
}

// A row written later than the entity's clock (by hand, or by an earlier
// life of the pair on a clock that ran ahead) is found by the run's first
// projection, which writes above it; the entity adopts the raised clock.
func TestProjectionClockMovesPastANewerRow(t *testing.T) {
	t.Parallel()
	future := time.Now().Add(24 * time.Hour).UnixMicro()
	rm := &memoryReadModel{rowStamp: future}
	h := newHarness(t, projectOpts).withReadModel(rm)
	h.update(nil, CommandRequest{Kind: SetArtifactAddedToUserFeed})
	h.update(nil, CommandRequest{Kind: SetArtifactRemovedFromUserFeed})
	h.at(func() {
		rm.mu.Lock()
		defer rm.mu.Unlock()
		require.Len(t, rm.written, 2)
		require.Greater(t, rm.written[1].Timestamp, future+1, "the second projection continues from the raised clock")
	})
	next := h.finish(input, SetArtifactRemovedFromUserFeed)
	require.Greater(t, next.Projection.Timestamp, future)
}

func TestProjectionIsSkippedWithoutReadModel(t *testing.T) {
	t.Parallel()
	// The projection activity is registered, as on a worker with a read
	// model, but this worker's options say it has none: nothing may run it.
	rm := &memoryReadModel{}
	h := newHarness(t, Options{Projection: projectOpts.Projection}).withReadModel(rm)
	var started []string
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		started = append(started, "activity "+info.ActivityType.Name)
	})
	h.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		started = append(started, "local activity "+info.ActivityType.Name)
	})
	h.update(nil, CommandRequest{Kind: SetArtifactReadByUser}, CommandRequest{Kind: SetArtifactAddedToUserFeed})
	next := h.finish(input, SetArtifactRemovedFromUserFeed)
	require.Empty(t, started)
	attempts, _ := rm.counts()
	require.Zero(t, attempts)
	require.Equal(t, uint64(0), next.Projection.Version)
	require.Equal(t, uint64(3), next.State.Version)
}

// A run that starts behind the read model (a continue-as-new while a
// projection ran) projects the carried state at once.
func TestCarriedUnprojectedStateIsProjected(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{}
	h := newHarness(t, projectOpts).withReadModel(rm)
	in := EntityInput{UserID: "Mike", ArtifactID: 1,
		State:      State{ArtifactRead: true, Version: 5, CommandsApplied: 9, Run: 2},
		Projection: ProjectionProgress{Version: 4, Timestamp: 1000}}
	h.at(func() { require.Equal(t, []uint64{5}, rm.versions(), "projected before any new command") })
	h.update(nil, CommandRequest{Kind: SetArtifactAddedToUserFeed})
	h.at(func() { require.Equal(t, uint64(6), rm.last().Version) })
	next := h.finish(in, SetArtifactAddedToUserFeed)
	require.Equal(t, uint64(6), next.Projection.Version)
}

// When the local attempt fails (Cassandra down), a regular activity on the
// read model's queue retries until it succeeds; changes made meanwhile
// coalesce into the next projection.
func TestFailedLocalProjectionFallsBackToTheActivity(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{unavailable: 3} // the local attempt and two retries
	h := newHarness(t, projectOpts).withReadModel(rm)
	var queues []string
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		queues = append(queues, info.TaskQueue)
	})
	h.update(nil, CommandRequest{Kind: SetArtifactReadByUser})
	h.step += 10 * time.Second // the retries back off 1 s, then 2 s
	h.at(func() {
		require.Equal(t, []uint64{1}, rm.versions())
		attempts, local := rm.counts()
		require.Equal(t, []bool{false}, local, "written by the regular activity")
		require.Equal(t, 4, attempts)
		require.Contains(t, queues, "projection-queue")
	})
	next := h.finish(input, SetArtifactReadByUser)
	require.Equal(t, uint64(1), next.Projection.Version)
}

// A projection the read model rejects is tried again after the next change
// (or after a pause), never in a hot loop.
func TestRejectedProjectionIsRetriedLater(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{reject: true}
	h := newHarness(t, projectOpts).withReadModel(rm)
	h.update(nil, CommandRequest{Kind: SetArtifactReadByUser})
	h.at(func() {
		require.Empty(t, rm.versions())
		attempts, _ := rm.counts()
		require.Equal(t, 1, attempts, "a rejection is not retried at once")
		rm.setReject(false) // the operator fixed the read model
	})
	h.update(nil, CommandRequest{Kind: SetArtifactAddedToUserFeed})
	h.at(func() { require.Equal(t, []uint64{2}, rm.versions(), "one write of the latest state") })
	next := h.finish(input, SetArtifactAddedToUserFeed)
	require.Equal(t, uint64(2), next.Projection.Version)
}

// An idle entity whose projections keep being rejected grows its history
// with every pause; it continues as new when the budget is reached, even
// though no command arrives.
func TestPausedEntityContinuesAsNewWhenItsHistoryIsDue(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{reject: true}
	opts := projectOpts
	opts.MaxHistoryEvents = 100
	h := newHarness(t, opts).withReadModel(rm)
	h.update(nil, CommandRequest{Kind: SetArtifactReadByUser})
	h.at(func() { h.env.SetCurrentHistoryLength(100) }) // the pauses filled the history
	h.env.ExecuteWorkflow(EntityWorkflowName, input)
	next := carried(t, h.env.GetWorkflowError())
	require.Equal(t, uint64(1), next.State.Version)
	require.Equal(t, uint64(0), next.Projection.Version, "the next run projects again")
	attempts, _ := rm.counts()
	require.GreaterOrEqual(t, attempts, 2, "it continued as new after a pause, not at once")
}

// Before history version 3 a paused run only continued as new at its next
// command: replays of such runs must not change.
func TestVersion2PausedRunWaitsForACommand(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{reject: true}
	opts := projectOpts
	opts.MaxHistoryEvents = 100
	h := newHarness(t, opts).withReadModel(rm)
	h.env.OnGetVersion(ChangeLocalProjection, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.signal(SetArtifactReadByUser)
	h.at(func() { h.env.SetCurrentHistoryLength(100) })
	h.step += 3 * time.Minute // several pauses pass
	h.at(func() {
		require.Equal(t, uint64(1), h.query().Version, "still running")
		require.Nil(t, rm.written)
	})
	next := h.finish(input, SetArtifactAddedToUserFeed)
	require.Equal(t, uint64(2), next.State.Version)
}

// A new entity's first command projects its state even when it changes
// nothing, so that a pair starting again from zero replaces the rows of its
// earlier life (the activity reads the row and deletes what is set there);
// later unchanged commands project nothing, changes project as before.
func TestNewLifeProjectsItsFirstCommandEvenUnchanged(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{}
	h := newHarness(t, projectOpts).withReadModel(rm)
	h.update(nil, CommandRequest{Kind: SetArtifactRemovedFromUserFeed})
	h.at(func() {
		require.Equal(t, []uint64{0}, rm.versions(), "the zero state is projected once")
		require.Nil(t, rm.last().Previous, "with the row unknown, so that the activity reads it")
		_, local := rm.counts()
		require.Equal(t, []bool{true}, local)
	})
	h.update(nil, CommandRequest{Kind: SetArtifactRemovedFromUserFeed})
	h.signal(SetArtifactRemovedFromUserFeed)
	h.at(func() { require.Equal(t, []uint64{0}, rm.versions(), "only once") })
	h.update(nil, CommandRequest{Kind: SetArtifactAddedToUserFeed})
	h.at(func() { require.Equal(t, []uint64{0, 1}, rm.versions()) })
	next := h.finish(input, SetArtifactAddedToUserFeed)
	require.Equal(t, uint64(1), next.Projection.Version)
	require.NotZero(t, next.Projection.Timestamp, "the next run knows it projected")
}

// A signalled command that changes nothing projects a new life too.
func TestNewLifeProjectsAnUnchangedSignal(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{}
	h := newHarness(t, projectOpts).withReadModel(rm)
	h.signal(SetArtifactRemovedFromUserFeed)
	h.at(func() { require.Equal(t, []uint64{0}, rm.versions()) })
	h.finish(input, SetArtifactReadByUser)
}

// Runs of history version 3 project only changes: their replays must not
// change.
func TestVersion3ProjectsOnlyChanges(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{}
	h := newHarness(t, projectOpts).withReadModel(rm)
	h.env.OnGetVersion(ChangeProjectNewLife, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.update(nil, CommandRequest{Kind: SetArtifactRemovedFromUserFeed})
	h.at(func() { require.Empty(t, rm.versions()) })
	h.update(nil, CommandRequest{Kind: SetArtifactAddedToUserFeed})
	h.at(func() { require.Equal(t, []uint64{1}, rm.versions()) })
	h.finish(input, SetArtifactReadByUser)
}
