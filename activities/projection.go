// Package activities holds the activities of the entity workflow: today the
// projection of its state into the Cassandra read model.
package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// ProjectStateName is the registered (durable) name of the projection.
const ProjectStateName = "ProjectState"

// ErrTypeRejected is the failure type of a projection the read model
// refused; Temporal does not retry it (the workflow tries again later).
const ErrTypeRejected = "ReadModelRejected"

// ProjectionInput is the state of one pair to write to the read model.
type ProjectionInput struct {
	UserID             string    `json:"userId"`
	ArtifactID         int64     `json:"artifactId"`
	ArtifactRead       bool      `json:"artifactRead"`
	ArtifactInUserFeed bool      `json:"artifactInUserFeed"`
	Version            uint64    `json:"version"`
	ChangedAt          time.Time `json:"changedAt"`
}

// Writer is the narrow view of the read model the projection needs
// (readmodel.Store).
type Writer interface {
	Write(ctx context.Context, row readmodel.Row) error
}

// Observer is told about every projection attempt (metrics.Metrics).
type Observer interface {
	ProjectionStarted()
	// ProjectionFinished reports the result (ok, unavailable, timeout or
	// rejected), the attempt number, and when ok the lag: the time from the
	// state change in the entity to its row written.
	ProjectionFinished(result string, attempt int32, lag time.Duration)
}

// Projection is the projection activity.
type Projection struct {
	writer   Writer
	observer Observer
	now      func() time.Time
}

// NewProjection returns the activity writing through w; observer may be nil.
func NewProjection(w Writer, observer Observer) *Projection {
	if observer == nil {
		observer = nopObserver{}
	}
	return &Projection{writer: w, observer: observer, now: time.Now}
}

type nopObserver struct{}

func (nopObserver) ProjectionStarted()                              {}
func (nopObserver) ProjectionFinished(string, int32, time.Duration) {}

// ProjectState writes the state. Errors Cassandra may recover from (down,
// overloaded, slow) are returned as they are and Temporal retries them with
// backoff; a request Cassandra rejects fails without retries.
func (p *Projection) ProjectState(ctx context.Context, in ProjectionInput) error {
	p.observer.ProjectionStarted()
	attempt := activity.GetInfo(ctx).Attempt
	err := p.writer.Write(ctx, readmodel.Row{
		UserID: in.UserID, ArtifactID: in.ArtifactID,
		ArtifactRead: in.ArtifactRead, ArtifactInUserFeed: in.ArtifactInUserFeed,
		Version: in.Version, ChangedAt: in.ChangedAt,
	})
	logger := activity.GetLogger(ctx)
	if err != nil {
		p.observer.ProjectionFinished(readmodel.Kind(err), attempt, 0)
		if !readmodel.Retryable(err) {
			return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeRejected, err)
		}
		logger.Warn("Projection failed; Temporal retries it", "Version", in.Version, "Attempt", attempt, "Error", err)
		return err
	}
	lag := p.now().Sub(in.ChangedAt)
	p.observer.ProjectionFinished("ok", attempt, lag)
	logger.Debug("Projected", "Version", in.Version, "Lag", lag)
	return nil
}

// RetryOptions tune the projection's activity options.
type RetryOptions struct {
	Timeout         time.Duration `json:"timeout"`
	InitialInterval time.Duration `json:"initialInterval"`
	MaxInterval     time.Duration `json:"maxInterval"`
}

// ExecuteProjectState is the typed way for a workflow to run ProjectState:
// retried with exponential backoff, without limit, until it succeeds or is
// rejected.
func ExecuteProjectState(ctx workflow.Context, opts RetryOptions, in ProjectionInput) workflow.Future {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: opts.Timeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        opts.InitialInterval,
			BackoffCoefficient:     2,
			MaximumInterval:        opts.MaxInterval,
			NonRetryableErrorTypes: []string{ErrTypeRejected},
		},
	})
	return workflow.ExecuteActivity(ctx, ProjectStateName, in)
}
