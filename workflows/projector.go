package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/internal/projection"
)

// projector writes the latest state to the read model whenever it is ahead
// of what was written. Changes made while a projection runs coalesce: the
// next projection writes the state as it is then.
type projector struct {
	key      EntityInput
	state    *State
	progress ProjectionProgress
	opts     projection.Options
	// v3 runs (ChangeLocalProjection) project locally first, with the
	// projection clock and the tombstone rule.
	v3 bool
	// previous is what this run's latest projection wrote; nil before the
	// run's first projection, which makes the activity read the row (once a
	// run: that re-checks the row's timestamp against the entity's clock).
	previous *projection.Flags
	// pauseEnded is set when a pause after a rejection ends, so the main
	// loop checks the history budget even when no command arrives (v3).
	pauseEnded bool
	// force asks for one projection although the state is not ahead of what
	// was written (ChangeProjectNewLife).
	force bool
}

func (p *projector) run(ctx workflow.Context) {
	logger := workflow.GetLogger(ctx)
	for {
		// The context is disconnected from cancellation: Await cannot fail.
		_ = workflow.Await(ctx, func() bool { return p.state.Version > p.progress.Version || p.force })
		in := p.input(ctx)
		res, err := p.project(ctx, in)
		if err != nil {
			// Only a rejection ends the activity's unlimited retries.
			logger.Error("Read model rejected the projection; trying again after the next change or a pause",
				"Version", in.Version, "Pause", p.opts.Pause(), "Error", err)
			_, _ = workflow.AwaitWithTimeout(ctx, p.opts.Pause(), func() bool { return p.state.Version > in.Version })
			p.pauseEnded = p.v3
			continue
		}
		p.force = false
		p.progress.Version = in.Version
		if p.v3 {
			p.progress.Timestamp = res.Timestamp
			p.previous = projected(in)
			if res.Adjusted {
				logger.Warn("The read model held a newer write of this pair; the projection clock moved past it",
					"Version", in.Version, "Timestamp", res.Timestamp)
			}
		}
		logger.Debug("Projected", "Version", in.Version, "Lag", workflow.Now(ctx).Sub(in.ChangedAt))
	}
}

// neverProjected reports whether the entity still has its zero state and
// never wrote to the read model in any run: a new pair, or one that starts
// again from zero beside the rows of an earlier life.
func (p *projector) neverProjected() bool {
	// progress.Version never exceeds state.Version, so it is zero too; a
	// zero projection clock means no run ever wrote the row.
	return p.state.Version == 0 && p.progress.Timestamp == 0
}

func (p *projector) input(ctx workflow.Context) projection.Input {
	in := projection.Input{
		UserID: p.key.UserID, ArtifactID: p.key.ArtifactID,
		ArtifactRead: p.state.ArtifactRead, ArtifactInUserFeed: p.state.ArtifactInUserFeed,
		Version: p.state.Version, ChangedAt: p.progress.ChangedAt,
	}
	if p.v3 {
		in.Timestamp = p.progress.nextTimestamp(workflow.Now(ctx))
		in.Previous = p.previous
	}
	return in
}

// project writes in: v3 runs try a local activity first (no activity task,
// one marker in history) and hand a failure other than a rejection to the
// regular activity, which retries until the read model is back.
func (p *projector) project(ctx workflow.Context, in projection.Input) (projection.Result, error) {
	var res projection.Result
	if !p.v3 {
		return res, projection.Execute(ctx, p.opts, in).Get(ctx, nil)
	}
	if p.opts.LocalTimeout > 0 {
		err := projection.ExecuteLocal(ctx, p.opts, in).Get(ctx, &res)
		if err == nil || rejected(err) {
			return res, err
		}
		workflow.GetLogger(ctx).Warn("Local projection failed; a regular activity retries it",
			"Version", in.Version, "Error", err)
	}
	err := projection.Execute(ctx, p.opts, in).Get(ctx, &res)
	return res, err
}

func rejected(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == projection.ErrTypeRejected
}
