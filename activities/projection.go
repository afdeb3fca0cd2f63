// Package activities holds the activities of the entity workflow: today the
// projection of its state into the Cassandra read model. Their contract
// (names, inputs, how a workflow runs them) is internal/projection.
package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/artifactstate/artifactstate/internal/projection"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// ReadModel is the narrow view of the read model the projection needs
// (readmodel.Store).
type ReadModel interface {
	Project(ctx context.Context, p readmodel.Projection) error
	Stamp(ctx context.Context, userID string, artifactID int64) (readmodel.Stamp, bool, error)
}

// Observer is told about every projection attempt (metrics.Metrics).
type Observer interface {
	ProjectionStarted()
	// ProjectionFinished reports the result (ok, unavailable, timeout or
	// rejected), the attempt number, and when ok the lag: the time from the
	// state change in the entity to its row written.
	ProjectionFinished(result string, attempt int32, lag time.Duration)
	// ProjectionClockAdjusted counts projections that found a newer write
	// in the row than the entity's clock (one Cassandra would have ignored).
	ProjectionClockAdjusted()
}

// Projection is the projection activity.
type Projection struct {
	store    ReadModel
	observer Observer
	now      func() time.Time
}

// NewProjection returns the activity writing to store; observer may be nil.
func NewProjection(store ReadModel, observer Observer) *Projection {
	if observer == nil {
		observer = nopObserver{}
	}
	return &Projection{store: store, observer: observer, now: time.Now}
}

type nopObserver struct{}

func (nopObserver) ProjectionStarted()                              {}
func (nopObserver) ProjectionFinished(string, int32, time.Duration) {}
func (nopObserver) ProjectionClockAdjusted()                        {}

// ProjectState writes the state. Errors Cassandra may recover from (down,
// overloaded, slow) are returned as they are and Temporal retries them with
// backoff; a request Cassandra rejects fails without retries.
func (p *Projection) ProjectState(ctx context.Context, in projection.Input) (projection.Result, error) {
	p.observer.ProjectionStarted()
	attempt := activity.GetInfo(ctx).Attempt
	logger := activity.GetLogger(ctx)
	w, res, err := p.plan(ctx, in)
	if err == nil {
		err = p.store.Project(ctx, w)
	}
	if err != nil {
		p.observer.ProjectionFinished(readmodel.Kind(err), attempt, 0)
		if !readmodel.Retryable(err) {
			return res, temporal.NewNonRetryableApplicationError(err.Error(), projection.ErrTypeRejected, err)
		}
		logger.Warn("Projection failed", "Version", in.Version, "Attempt", attempt, "Error", err)
		return res, err
	}
	if res.Adjusted {
		p.observer.ProjectionClockAdjusted()
		logger.Warn("The row held a newer write than the entity's projection clock; wrote above it",
			"Version", in.Version, "Timestamp", res.Timestamp)
	}
	lag := p.now().Sub(in.ChangedAt)
	p.observer.ProjectionFinished("ok", attempt, lag)
	logger.Debug("Projected", "Version", in.Version, "Timestamp", res.Timestamp, "Lag", lag)
	return res, nil
}

// plan decides the write: its timestamp and which flags need a delete.
func (p *Projection) plan(ctx context.Context, in projection.Input) (readmodel.Projection, projection.Result, error) {
	w := readmodel.Projection{Row: readmodel.Row{
		UserID: in.UserID, ArtifactID: in.ArtifactID,
		ArtifactRead: in.ArtifactRead, ArtifactInUserFeed: in.ArtifactInUserFeed,
		Version: in.Version, ChangedAt: in.ChangedAt,
	}, Timestamp: in.Timestamp}
	if in.Timestamp == 0 {
		// Recorded by history versions 1 and 2: the version is the
		// timestamp, and a false flag is always deleted.
		w.Timestamp = int64(in.Version)
		w.RemoveFromFeed, w.RemoveFromRead = !in.ArtifactInUserFeed, !in.ArtifactRead
		return w, projection.Result{Timestamp: w.Timestamp}, nil
	}
	res := projection.Result{Timestamp: in.Timestamp}
	prev := in.Previous
	if prev == nil {
		// The run's first projection: learn what the row holds, and write
		// above its timestamp if it is newer than the entity's clock.
		stamp, found, err := p.store.Stamp(ctx, in.UserID, in.ArtifactID)
		if err != nil {
			return w, res, err
		}
		prev = &projection.Flags{Read: stamp.ArtifactRead, InFeed: stamp.ArtifactInUserFeed}
		if found && stamp.Timestamp >= w.Timestamp {
			w.Timestamp = stamp.Timestamp + 1
			res = projection.Result{Timestamp: w.Timestamp, Adjusted: true}
		}
	}
	w.RemoveFromFeed = prev.InFeed && !in.ArtifactInUserFeed
	w.RemoveFromRead = prev.Read && !in.ArtifactRead
	return w, res, nil
}
