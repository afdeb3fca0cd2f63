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

// LagObserver receives the projection lag: the time from a state change in
// the entity to its row being written.
type LagObserver interface {
	ObserveLag(time.Duration)
}

// Projection is the projection activity.
type Projection struct {
	writer Writer
	lag    LagObserver
	now    func() time.Time
}

// NewProjection returns the activity writing through w; lag may be nil.
func NewProjection(w Writer, lag LagObserver) *Projection {
	return &Projection{writer: w, lag: lag, now: time.Now}
}

// ProjectState writes the state. Errors Cassandra may recover from (down,
// overloaded, slow) are returned as they are and Temporal retries them with
// backoff; a request Cassandra rejects fails without retries.
func (p *Projection) ProjectState(ctx context.Context, in ProjectionInput) error {
	err := p.writer.Write(ctx, readmodel.Row{
		UserID: in.UserID, ArtifactID: in.ArtifactID,
		ArtifactRead: in.ArtifactRead, ArtifactInUserFeed: in.ArtifactInUserFeed,
		Version: in.Version, ChangedAt: in.ChangedAt,
	})
	logger := activity.GetLogger(ctx)
	if err != nil {
		if !readmodel.Retryable(err) {
			return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeRejected, err)
		}
		logger.Warn("Projection failed; Temporal retries it", "Version", in.Version,
			"Attempt", activity.GetInfo(ctx).Attempt, "Error", err)
		return err
	}
	lag := p.now().Sub(in.ChangedAt)
	if p.lag != nil {
		p.lag.ObserveLag(lag)
	}
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
