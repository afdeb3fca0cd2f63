package entities

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/artifactstate/artifactstate/internal/temporalclient"
)

// A query that matching refuses because no worker polled lately (seen in the
// fault test right after matching restarted) is a 503, not a 500; other
// failed preconditions pass through.
func TestNoRecentPollerIsUnavailable(t *testing.T) {
	ctx := context.Background()
	attempts := &temporalclient.Attempts{}
	noPoller := serviceerror.NewFailedPrecondition("no poller seen for task queue recently, worker may be down")
	require.ErrorIs(t, classifyRead(ctx, attempts, noPoller), ErrUnavailable)
	require.ErrorIs(t, classifyWrite(ctx, attempts, noPoller), ErrUnavailable)

	other := serviceerror.NewFailedPrecondition("something else")
	got := classifyRead(ctx, attempts, other)
	require.False(t, errors.Is(got, ErrUnavailable), "another failed precondition is not a 503: %v", got)
	require.Equal(t, other, got)
}

// Temporal answering Canceled while the caller still waits (a query handed
// to the poll of a worker that was just killed) is a retryable 503, not a
// 500; the caller's own cancellation stays a cancellation.
func TestServerCancellationIsUnavailable(t *testing.T) {
	attempts := &temporalclient.Attempts{}
	cancelled := serviceerror.NewCanceled("context canceled")
	live := context.Background()
	require.ErrorIs(t, classifyRead(live, attempts, cancelled), ErrUnavailable)
	require.True(t, retryableQuery(live, cancelled))

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, errors.Is(classifyRead(gone, attempts, cancelled), ErrUnavailable))
	require.False(t, retryableQuery(gone, cancelled))
}
