// Package projection is the contract between the entity workflow and the
// ProjectState activity that writes the Cassandra read model: the activity's
// durable name, its input and result, its failure types, and the typed ways
// a workflow runs it. It links no database driver, so the deterministic
// workflow code can import it; the implementation lives in activities/.
package projection

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Name is the registered (durable) name of the projection activity.
const Name = "ProjectState"

// ErrTypeRejected is the failure type of a projection the read model refused
// (missing schema, permissions); Temporal does not retry it, the entity tries
// again after its next change or a pause.
const ErrTypeRejected = "ReadModelRejected"

// Flags are the two projected flags of a pair.
type Flags struct {
	Read   bool `json:"read"`
	InFeed bool `json:"inFeed"`
}

// Input is the state of one pair to write to the read model.
type Input struct {
	UserID             string    `json:"userId"`
	ArtifactID         int64     `json:"artifactId"`
	ArtifactRead       bool      `json:"artifactRead"`
	ArtifactInUserFeed bool      `json:"artifactInUserFeed"`
	Version            uint64    `json:"version"`
	ChangedAt          time.Time `json:"changedAt"`

	// Timestamp is the write timestamp (microseconds since the Unix epoch)
	// of every statement: the entity's projection clock, which only grows
	// over the entity's whole life and follows wall-clock time, so a row of
	// an earlier life of the pair (or written by hand) cannot outrank it.
	// Zero in inputs recorded by history versions 1 and 2, which wrote with
	// Version as the timestamp.
	Timestamp int64 `json:"timestamp,omitempty"`
	// Previous is what the entity's previous projection wrote, which decides
	// whether a flag that is false now needs a delete (only a true→false
	// change writes a tombstone). Nil means unknown: the activity reads the
	// row first, and raises Timestamp above the row's if the row is newer.
	Previous *Flags `json:"previous,omitempty"`
}

// Flags are the flags this input projects.
func (in Input) Flags() Flags { return Flags{Read: in.ArtifactRead, InFeed: in.ArtifactInUserFeed} }

// Result is what a projection wrote.
type Result struct {
	// Timestamp the rows were written with: Input.Timestamp, or just above
	// the timestamp the row already had when that was newer. The entity
	// adopts it as its projection clock.
	Timestamp int64 `json:"timestamp"`
	// Adjusted reports that the row held a newer write than Input.Timestamp
	// (a write Cassandra would have ignored), so Timestamp was raised.
	Adjusted bool `json:"adjusted,omitempty"`
}

// Options tune how the entity runs the projection. They are worker
// configuration recorded in each run's history.
type Options struct {
	// Timeout bounds one attempt of the regular activity.
	Timeout time.Duration `json:"timeout"`
	// InitialInterval and MaxInterval shape the regular activity's retries.
	InitialInterval time.Duration `json:"initialInterval"`
	MaxInterval     time.Duration `json:"maxInterval"`
	// LocalTimeout bounds the local attempt made inside the workflow task
	// that changed the state; when it fails the regular activity takes over.
	LocalTimeout time.Duration `json:"localTimeout,omitempty"`
	// TaskQueue is where the regular activity runs: only workers with a
	// read model poll it. Empty in runs of history versions 1 and 2, which
	// scheduled it on the entity's own queue.
	TaskQueue string `json:"taskQueue,omitempty"`
	// RejectedPause is how long an entity waits, after the read model
	// rejected a projection, before it tries again if nothing changed
	// first; zero means DefaultRejectedPause.
	RejectedPause time.Duration `json:"rejectedPause,omitempty"`
}

// DefaultRejectedPause is the pause after a rejection when none is set.
const DefaultRejectedPause = 10 * time.Minute

// Pause is the pause after a rejection.
func (o Options) Pause() time.Duration {
	if o.RejectedPause > 0 {
		return o.RejectedPause
	}
	return DefaultRejectedPause
}

// Execute runs the projection as a regular activity, retried with
// exponential backoff without limit until it succeeds or is rejected. Its
// future yields a Result (nothing for history versions 1 and 2).
func Execute(ctx workflow.Context, opts Options, in Input) workflow.Future {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           opts.TaskQueue,
		StartToCloseTimeout: opts.Timeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        opts.InitialInterval,
			BackoffCoefficient:     2,
			MaximumInterval:        opts.MaxInterval,
			NonRetryableErrorTypes: []string{ErrTypeRejected},
		},
	})
	return workflow.ExecuteActivity(ctx, Name, in)
}

// ExecuteLocal runs one attempt of the projection as a local activity, in
// the workflow task that changed the state: no activity task, no extra
// history events beyond one marker. Its future yields a Result.
func ExecuteLocal(ctx workflow.Context, opts Options, in Input) workflow.Future {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: opts.LocalTimeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	return workflow.ExecuteLocalActivity(ctx, Name, in)
}
