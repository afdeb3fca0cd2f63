// Package apierror maps a failed call of the application service
// (internal/pairs) to how both APIs answer it: one table, from the error
// kinds of the entities (internal/entities/errors.go), the read model and
// the service to the outcomes of internal/apiwire, with the message the
// caller reads and what the operators see in the log. The transports render
// a Failure in their own form (a JSON body, a gRPC status).
package apierror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/limits"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// Failure is how one failed call is answered.
type Failure struct {
	apiwire.Outcome
	// Message is what the caller reads.
	Message string
	// Field is the request field at fault, as the transport names it; empty
	// when no one field is.
	Field string
	// Current is the pair's state now (VersionMismatch).
	Current *pairs.State
}

// Dialect is what differs between the transports in the messages: the
// names of the request fields they mention, and the words for a caller
// that went away.
type Dialect struct {
	// IdempotencyKey, IfVersion and PageToken name the request's fields
	// ("Idempotency-Key", "idempotency_key").
	IdempotencyKey, IfVersion, PageToken string
	// KeyReused is the message of a reused idempotency key.
	KeyReused string
	// Gone is what the client did when it went away ("closed the request").
	Gone string
}

// Classifier maps failures for one transport.
type Classifier struct {
	Dialect Dialect
	// RequestTimeout is api.requestTimeout, which a timeout's message names.
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

// call is what a rule reads of the failed call.
type call struct {
	ctx   context.Context
	err   error
	write bool
	// mismatch is err as a version mismatch, if it is one.
	mismatch *entities.VersionMismatchError
}

// rule is one row of the table: the failures it matches, its outcome, and
// how it is told and logged.
type rule struct {
	match   func(call) bool
	outcome apiwire.Outcome
	// field is the request field at fault, if one is.
	field func(Dialect) string
	// message is what the caller reads.
	message func(Classifier, call) string
	// logged is the log line's message, if the operators should see one,
	// at level.
	logged func(Dialect) string
	level  slog.Level
}

func is(target error) func(call) bool {
	return func(c call) bool { return errors.Is(c.err, target) }
}

func says(msg string) func(Classifier, call) string {
	return func(Classifier, call) string { return msg }
}

func logs(msg string) func(Dialect) string { return func(Dialect) string { return msg } }

// mayHaveApplied ends the message of a write whose outcome is unknown.
func mayHaveApplied(c call, retry string) string {
	if !c.write {
		return ""
	}
	return "; the command may or may not have been applied" + retry
}

// rules is the table, first match first. Whatever matches no rule is an
// internal error (logged).
var rules = []rule{
	{match: func(c call) bool { return c.mismatch != nil }, outcome: apiwire.VersionMismatch,
		message: func(cl Classifier, c call) string {
			return cl.Dialect.IfVersion + ": the pair is at version " + strconv.FormatUint(c.mismatch.Current.Version, 10) + "; nothing was applied"
		}},
	{match: is(entities.ErrIdempotencyKeyReused), outcome: apiwire.IdempotencyKeyReused,
		field:   func(d Dialect) string { return d.IdempotencyKey },
		message: func(cl Classifier, _ call) string { return cl.Dialect.KeyReused }},
	// A fan-out's item never started: certainly not applied.
	{match: is(pairs.ErrNotAttempted), outcome: apiwire.TemporalTimeout,
		message: func(cl Classifier, _ call) string {
			return pairs.ErrNotAttempted.Error() + ": retry it (with the same " + cl.Dialect.IdempotencyKey + ")"
		}},
	{match: is(pairs.ErrReadModelNotConfigured), outcome: apiwire.ReadModelNotConfigured,
		message: says(pairs.ErrReadModelNotConfigured.Error())},
	{match: is(readmodel.ErrBadPageToken), outcome: apiwire.InvalidArgument,
		field: func(d Dialect) string { return d.PageToken },
		message: func(cl Classifier, _ call) string {
			return cl.Dialect.PageToken + ": is not a token this service issued"
		}},
	{match: is(readmodel.ErrUnavailable), outcome: apiwire.ReadModelUnavailable,
		message: says("the read model (Cassandra) is unavailable; retry later"),
		logged:  logs("Read model unavailable"), level: slog.LevelWarn},
	{match: func(c call) bool {
		// A deadline that is not the entities' own passed in Cassandra.
		return errors.Is(c.err, readmodel.ErrTimeout) ||
			errors.Is(c.err, context.DeadlineExceeded) && !errors.Is(c.err, entities.ErrTimeout)
	}, outcome: apiwire.ReadModelTimeout,
		message: says("the read model (Cassandra) did not answer in time"),
		logged:  logs("Read model timed out"), level: slog.LevelWarn},
	// Shed by this process's admission bound: never sent, so certainly not
	// applied; logged at debug only (a burst sheds thousands a second, and
	// the 503s are counted by the HTTP and gRPC metrics).
	{match: is(limits.ErrOverloaded), outcome: apiwire.TemporalUnavailable,
		message: says("this API node is at its bound of concurrent calls to the entity store (Temporal); nothing was applied; retry later"),
		logged:  logs("Shed by the admission bound"), level: slog.LevelDebug},
	{match: is(entities.ErrUnavailable), outcome: apiwire.TemporalUnavailable,
		message: says("the entity store (Temporal) is unavailable or overloaded; retry later"),
		logged:  logs("Temporal unavailable"), level: slog.LevelWarn},
	{match: is(entities.ErrEntityStuck), outcome: apiwire.EntityStuck,
		message: says("this pair's entity cannot run (its workflow task keeps failing); its writes are kept, an operator must act (see `artifactstate stuck`)"),
		logged:  logs("Entity stuck"), level: slog.LevelError},
	{match: is(entities.ErrTimeout), outcome: apiwire.TemporalTimeout,
		message: func(cl Classifier, c call) string {
			return fmt.Sprintf("the entity store (Temporal) did not answer within %v", cl.RequestTimeout) +
				mayHaveApplied(c, ": retry it with the same "+cl.Dialect.IdempotencyKey)
		},
		logged: logs("Temporal timed out"), level: slog.LevelWarn},
	// The client went away: nobody reads this answer.
	{match: func(c call) bool { return errors.Is(c.err, context.Canceled) && c.ctx.Err() != nil },
		outcome: apiwire.Cancelled,
		message: func(cl Classifier, c call) string { return "the client " + cl.Dialect.Gone + mayHaveApplied(c, "") },
		logged:  func(d Dialect) string { return "Client " + d.Gone }, level: slog.LevelInfo},
}

// Classify maps err, the failure of a call made in ctx, to its answer, and
// logs it if the operators should see it (with the pair, when the failure
// was on one). write says whether the call was a command: a command that
// timed out may or may not have been applied.
func (cl Classifier) Classify(ctx context.Context, err error, write bool) Failure {
	logger := cl.Logger
	var onPair *pairs.Error
	if errors.As(err, &onPair) {
		logger = logger.With("WorkflowID", onPair.Key.WorkflowID())
	}
	c := call{ctx: ctx, err: err, write: write}
	errors.As(err, &c.mismatch) // stays nil unless err is a version mismatch
	for _, r := range rules {
		if !r.match(c) {
			continue
		}
		f := Failure{Outcome: r.outcome, Message: r.message(cl, c)}
		if r.field != nil {
			f.Field = r.field(cl.Dialect)
		}
		if c.mismatch != nil && onPair != nil {
			current := pairs.EntityState(onPair.Key, c.mismatch.Current)
			f.Current = &current
		}
		if r.logged != nil {
			logger.Log(ctx, r.level, r.logged(cl.Dialect), "error", err)
		}
		return f
	}
	logger.ErrorContext(ctx, "Request failed", "error", err)
	return Failure{Outcome: apiwire.Internal, Message: "internal error"}
}

// OneOf lists the values a field may take, as both APIs' messages do:
// "a", "a or b", "a, b or c".
func OneOf(values []string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}
