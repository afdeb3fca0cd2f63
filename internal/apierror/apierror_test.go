package apierror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/limits"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/workflows"
)

var dialect = Dialect{IdempotencyKey: "key", IfVersion: "ifVersion", PageToken: "token", KeyReused: "key reused", Gone: "left"}

// Each error kind of the entities, the read model and the service has its
// outcome, the message a caller reads, and the field at fault.
func TestEveryErrorKindHasItsOutcome(t *testing.T) {
	t.Parallel()
	cl := Classifier{Dialect: dialect, RequestTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	key := entityid.Key{UserID: "Mike", ArtifactID: 1}
	onPair := func(err error) error { return &pairs.Error{Key: key, Err: err} }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name    string
		ctx     context.Context
		err     error
		write   bool
		outcome apiwire.Outcome
		message string
		field   string
	}{
		{name: "Temporal unreachable", err: onPair(fmt.Errorf("%w: refused", entities.ErrUnavailable)),
			outcome: apiwire.TemporalUnavailable, message: "the entity store (Temporal) is unavailable or overloaded; retry later"},
		{name: "shed by the admission bound", err: onPair(fmt.Errorf("%w: %w", entities.ErrUnavailable, limits.ErrOverloaded)), write: true,
			outcome: apiwire.TemporalUnavailable,
			message: "this API node is at its bound of concurrent calls to the entity store (Temporal); nothing was applied; retry later"},
		{name: "a read timed out", err: onPair(fmt.Errorf("%w: late", entities.ErrTimeout)),
			outcome: apiwire.TemporalTimeout, message: "the entity store (Temporal) did not answer within 5s"},
		{name: "a write timed out: it may have applied", err: onPair(entities.ErrTimeout), write: true, outcome: apiwire.TemporalTimeout,
			message: "the entity store (Temporal) did not answer within 5s; the command may or may not have been applied: retry it with the same key"},
		{name: "a stuck entity", err: onPair(entities.ErrEntityStuck), outcome: apiwire.EntityStuck,
			message: "this pair's entity cannot run (its workflow task keeps failing); its writes are kept, an operator must act (see `artifactstate stuck`)"},
		{name: "a reused idempotency key", err: onPair(entities.ErrIdempotencyKeyReused), write: true,
			outcome: apiwire.IdempotencyKeyReused, message: "key reused", field: "key"},
		{name: "a version mismatch", err: onPair(&entities.VersionMismatchError{Current: workflows.State{Version: 3}}), write: true,
			outcome: apiwire.VersionMismatch, message: "ifVersion: the pair is at version 3; nothing was applied"},
		{name: "a fan-out item never started", err: onPair(pairs.ErrNotAttempted), write: true, outcome: apiwire.TemporalTimeout,
			message: pairs.ErrNotAttempted.Error() + ": retry it (with the same key)"},
		{name: "no read model", err: pairs.ErrReadModelNotConfigured, outcome: apiwire.ReadModelNotConfigured,
			message: pairs.ErrReadModelNotConfigured.Error()},
		{name: "a page token not ours", err: readmodel.ErrBadPageToken, outcome: apiwire.InvalidArgument,
			message: "token: is not a token this service issued", field: "token"},
		{name: "Cassandra unreachable", err: onPair(readmodel.ErrUnavailable), outcome: apiwire.ReadModelUnavailable,
			message: "the read model (Cassandra) is unavailable; retry later"},
		{name: "Cassandra timed out", err: readmodel.ErrTimeout, outcome: apiwire.ReadModelTimeout,
			message: "the read model (Cassandra) did not answer in time"},
		{name: "a deadline that is not Temporal's", err: context.DeadlineExceeded, outcome: apiwire.ReadModelTimeout,
			message: "the read model (Cassandra) did not answer in time"},
		{name: "the client went away during a write", ctx: cancelled, err: onPair(context.Canceled), write: true,
			outcome: apiwire.Cancelled, message: "the client left; the command may or may not have been applied"},
		{name: "cancelled while the client is still there", err: context.Canceled, outcome: apiwire.Internal, message: "internal error"},
		{name: "anything else", err: errors.New("boom"), outcome: apiwire.Internal, message: "internal error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			f := cl.Classify(ctx, c.err, c.write)
			if f.Outcome != c.outcome || f.Message != c.message || f.Field != c.field {
				t.Errorf("got %+v %q field %q\nwant %+v %q field %q", f.Outcome, f.Message, f.Field, c.outcome, c.message, c.field)
			}
			if (f.Current != nil) != (c.outcome == apiwire.VersionMismatch) {
				t.Errorf("current state %v", f.Current)
			}
		})
	}
}

// A version mismatch on a pair answers the pair's state now.
func TestVersionMismatchCarriesTheCurrentState(t *testing.T) {
	t.Parallel()
	cl := Classifier{Dialect: dialect, Logger: slog.New(slog.DiscardHandler)}
	key := entityid.Key{UserID: "Ann", ArtifactID: 9}
	f := cl.Classify(context.Background(), &pairs.Error{Key: key,
		Err: &entities.VersionMismatchError{Current: workflows.State{ArtifactRead: true, Version: 4}}}, true)
	want := pairs.State{Key: key, ArtifactRead: true, Version: 4, Consistency: pairs.Strong}
	if f.Current == nil || *f.Current != want {
		t.Fatalf("current %+v, want %+v", f.Current, want)
	}
}

func TestOneOf(t *testing.T) {
	t.Parallel()
	for want, values := range map[string][]string{"": nil, "a": {"a"}, "a or b": {"a", "b"}, "a, b or c": {"a", "b", "c"}} {
		if got := OneOf(values); got != want {
			t.Errorf("OneOf(%q) = %q, want %q", values, got, want)
		}
	}
}
