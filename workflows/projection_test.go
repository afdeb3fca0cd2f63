package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// memoryReadModel records the projections it receives; reject makes it
// refuse them as Cassandra refuses a bad request.
type memoryReadModel struct {
	mu     sync.Mutex
	rows   []readmodel.Row
	reject bool
}

func (m *memoryReadModel) Write(_ context.Context, row readmodel.Row) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reject {
		return readmodel.ErrRejected
	}
	m.rows = append(m.rows, row)
	return nil
}

func (m *memoryReadModel) versions() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uint64
	for _, r := range m.rows {
		out = append(out, r.Version)
	}
	return out
}

func (m *memoryReadModel) last() readmodel.Row {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rows[len(m.rows)-1]
}

var projectOpts = Options{Project: true, Projection: activities.RetryOptions{Timeout: 5 * time.Second, InitialInterval: time.Second, MaxInterval: 10 * time.Second}}

func TestEveryChangeIsProjected(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{}
	h := newHarness(t, projectOpts).withReadModel(rm)
	h.signal(SetArtifactReadByUser)
	h.at(func() { require.Equal(t, []uint64{1}, rm.versions()) })
	h.signal(SetArtifactReadByUser) // no change, no projection
	h.signal(SetArtifactAddedToUserFeed)
	h.at(func() {
		require.Equal(t, []uint64{1, 2}, rm.versions())
		require.Equal(t, readmodel.Row{UserID: "Mike", ArtifactID: 1, ArtifactRead: true, ArtifactInUserFeed: true, Version: 2,
			ChangedAt: rm.last().ChangedAt}, rm.last())
		require.False(t, rm.last().ChangedAt.IsZero())
	})
	next := h.finish(input, SetArtifactAddedToUserFeed)
	require.Equal(t, uint64(2), next.Projection.Version, "the next run knows what is projected")
}

func TestProjectionIsSkippedWithoutReadModel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}) // no activity registered: scheduling one would fail the test
	h.signal(SetArtifactReadByUser, SetArtifactAddedToUserFeed)
	next := h.finish(input, SetArtifactRemovedFromUserFeed)
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
		Projection: ProjectionProgress{Version: 4}}
	h.at(func() { require.Equal(t, []uint64{5}, rm.versions(), "projected before any new command") })
	h.signal(SetArtifactAddedToUserFeed)
	h.at(func() { require.Equal(t, uint64(6), rm.last().Version) })
	next := h.finish(in, SetArtifactAddedToUserFeed)
	require.Equal(t, uint64(6), next.Projection.Version)
}

// A projection the read model rejects is tried again after the next change
// (or after a pause), never in a hot loop.
func TestRejectedProjectionIsRetriedLater(t *testing.T) {
	t.Parallel()
	rm := &memoryReadModel{reject: true}
	h := newHarness(t, projectOpts).withReadModel(rm)
	h.signal(SetArtifactReadByUser)
	h.at(func() {
		require.Empty(t, rm.versions())
		rm.mu.Lock()
		rm.reject = false // the operator fixed the read model
		rm.mu.Unlock()
	})
	h.signal(SetArtifactAddedToUserFeed)
	h.at(func() { require.Equal(t, []uint64{2}, rm.versions(), "one write of the latest state") })
	next := h.finish(input, SetArtifactAddedToUserFeed)
	require.Equal(t, uint64(2), next.Projection.Version)
}
