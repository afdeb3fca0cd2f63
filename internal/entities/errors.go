package entities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"

	"github.com/artifactstate/artifactstate/internal/temporalclient"
	"github.com/artifactstate/artifactstate/workflows"
)

// The outcomes the APIs tell apart (HTTP status / gRPC code in brackets).
var (
	// ErrUnavailable means Temporal could not be reached or shed the load;
	// the caller may retry later (503 / Unavailable).
	ErrUnavailable = errors.New("temporal is unavailable or overloaded")
	// ErrTimeout means Temporal did not answer before the deadline (504 /
	// DeadlineExceeded). A write that timed out may or may not have been
	// applied: retry it with the same idempotency key.
	ErrTimeout = errors.New("temporal did not answer in time")
	// ErrEntityStuck means the pair's workflow task failed: it keeps failing
	// (typically a deploy that cannot replay it: an operator must act), or a
	// task that tried to close the run was refused. Its earlier commands are
	// kept; a write that failed so may or may not have been applied (503 /
	// Unavailable, entity_unavailable).
	ErrEntityStuck = errors.New("the entity's workflow task keeps failing")
	// ErrIdempotencyKeyReused means the key was used before for another
	// command kind (422 / FailedPrecondition).
	ErrIdempotencyKeyReused = errors.New("idempotency key reused for a different command")
)

// VersionMismatchError is a conditional write whose expected version is not
// the entity's (412 / FailedPrecondition); Current is the state now.
type VersionMismatchError struct {
	Current workflows.State
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("the state is at version %d", e.Current.Version)
}

// classifyWrite maps an update's failure to the outcomes above.
func classifyWrite(ctx context.Context, attempts *temporalclient.Attempts, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case workflows.ErrTypeVersionMismatch:
			mismatch := &VersionMismatchError{}
			if detailsErr := appErr.Details(&mismatch.Current); detailsErr != nil {
				return fmt.Errorf("decode the current state of a version mismatch: %w", detailsErr)
			}
			return mismatch
		case workflows.ErrTypeIdempotencyKeyReused:
			return fmt.Errorf("%w: %s", ErrIdempotencyKeyReused, appErr.Message())
		}
	}
	return classifyRead(ctx, attempts, err)
}

// classifyRead maps Temporal's errors to ErrUnavailable, ErrTimeout and
// ErrEntityStuck (wrapped with the cause) and passes everything else through.
func classifyRead(ctx context.Context, attempts *temporalclient.Attempts, err error) error {
	var notReady *serviceerror.WorkflowNotReady
	var queryFailed *serviceerror.QueryFailed
	switch {
	case err == nil:
		return nil
	case serverCancelled(ctx, err):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &notReady):
		return fmt.Errorf("%w: %v", ErrEntityStuck, err)
	case errors.As(err, &queryFailed):
		// The entity's query handlers cannot fail: the worker could not
		// answer (e.g. its deadlock detector fired on a starved CPU).
		return fmt.Errorf("%w: the worker failed the query: %v", ErrUnavailable, err)
	case unavailable(err):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case noRecentPoller(err):
		// Matching fails a query at once when no worker polled the task
		// queue lately: every worker is down, or matching just restarted and
		// has not seen their polls yet (the fault test found the latter).
		return fmt.Errorf("%w: no worker is polling the entities' task queue: %v", ErrUnavailable, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || code(err) == codes.DeadlineExceeded:
		// The SDK retried until the deadline: what failed last tells why.
		if last := attempts.LastError(); unavailable(last) {
			return fmt.Errorf("%w: %v", ErrUnavailable, last)
		}
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return err
}

// serverCancelled reports whether Temporal answered Canceled to a call
// whose caller had not given up: a query handed to a worker's poll that
// died with its worker (the dead-worker test saw it a few milliseconds
// after a SIGKILL). Nothing of the caller's was cancelled.
func serverCancelled(ctx context.Context, err error) bool {
	return ctx.Err() == nil && code(err) == codes.Canceled
}

func unavailable(err error) bool {
	if err == nil {
		return false
	}
	switch code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return false
}

// noRecentPoller is matching's answer to a query when no worker polled the
// task queue within matching.queryPollerUnavailableWindow: a FailedPrecondition
// told apart from the others only by its message (the server's constant).
func noRecentPoller(err error) bool {
	s := serviceerror.ToStatus(err)
	return s != nil && s.Code() == codes.FailedPrecondition && strings.Contains(s.Message(), "no poller seen for task queue recently")
}

func code(err error) codes.Code {
	if s := serviceerror.ToStatus(err); s != nil {
		return s.Code()
	}
	return codes.Unknown
}
