package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo the API sends.
const ErrorDomain = "artifactstate"

// The reasons of google.rpc.ErrorInfo (and of Error.reason): the HTTP API's
// error codes, in the form gRPC's error model uses.
const (
	ReasonInvalidArgument        = "INVALID_ARGUMENT"
	ReasonVersionMismatch        = "VERSION_MISMATCH"
	ReasonIdempotencyKeyReused   = "IDEMPOTENCY_KEY_REUSED"
	ReasonReadModelNotConfigured = "READ_MODEL_NOT_CONFIGURED"
	ReasonTemporalUnavailable    = "TEMPORAL_UNAVAILABLE"
	ReasonEntityStuck            = "ENTITY_STUCK"
	ReasonReadModelUnavailable   = "READ_MODEL_UNAVAILABLE"
	ReasonTemporalTimeout        = "TEMPORAL_TIMEOUT"
	ReasonReadModelTimeout       = "READ_MODEL_TIMEOUT"
	ReasonCancelled              = "CANCELLED"
	ReasonUnauthenticated        = "UNAUTHENTICATED"
	ReasonPermissionDenied       = "PERMISSION_DENIED"
	ReasonInternal               = "INTERNAL"
)

// fieldError is an invalid request field; field is its path in the request
// ("user_id", "pairs[3].user_id").
type fieldError struct {
	field, reason string
}

func (e *fieldError) Error() string { return e.field + ": " + e.reason }

func invalid(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, reason: fmt.Sprintf(format, args...)}
}

// failure is how a failed request is answered: a status with details for a
// call of its own, an Error for an item of a batch, a feed page or a
// session.
type failure struct {
	code    codes.Code
	reason  string
	message string
	field   string
	current *pb.PairState
	retry   time.Duration
}

// status is the failure as a gRPC status with its details.
func (f *failure) status() *status.Status {
	st := status.New(f.code, f.message)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: f.reason, Domain: ErrorDomain}}
	if f.field != "" {
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: f.field, Description: f.message}}})
	}
	if f.retry > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(f.retry)})
	}
	if f.current != nil {
		details = append(details, &errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
			Type: "VERSION", Subject: "version", Description: f.message}}}, f.current)
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil { // only a detail that cannot be marshalled; they all can
		return st
	}
	return withDetails
}

func (f *failure) err() error { return f.status().Err() }

// proto is the failure as an item's Error.
func (f *failure) proto() *pb.Error {
	e := &pb.Error{Code: int32(f.code), Message: f.message, Reason: f.reason, Field: f.field, Current: f.current}
	if f.retry > 0 {
		e.RetryDelay = durationpb.New(f.retry)
	}
	return e
}

// pairError is a failure of a call on one pair: classify logs the pair and
// puts it in the answer of a version mismatch.
type pairError struct {
	key entityid.Key
	err error
}

func (e *pairError) Error() string { return e.key.String() + ": " + e.err.Error() }
func (e *pairError) Unwrap() error { return e.err }

// withKey wraps a failure on pair k (nil stays nil).
func withKey(k entityid.Key, err error) error {
	if err == nil {
		return nil
	}
	return &pairError{key: k, err: err}
}

// authError is a request the Authorizer refused.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// classify maps a failed request to its answer, as the HTTP API does
// (server/errors.go), and logs why. write says whether the request was a
// command (its timeout may or may not have applied it).
func (s *service) classify(ctx context.Context, err error, write bool) *failure {
	logger := s.logger
	var onPair *pairError
	var key *entityid.Key
	if errors.As(err, &onPair) {
		key = &onPair.key
		logger = logger.With("WorkflowID", key.WorkflowID())
	}
	var denied *authError
	if errors.As(err, &denied) {
		logger.InfoContext(ctx, "Request refused", "error", err)
		return authFailure(denied.err)
	}
	var field *fieldError
	var mismatch *entities.VersionMismatchError
	switch {
	case errors.As(err, &field):
		return &failure{code: codes.InvalidArgument, reason: ReasonInvalidArgument, message: field.Error(), field: field.field}
	case errors.As(err, &mismatch):
		f := &failure{code: codes.FailedPrecondition, reason: ReasonVersionMismatch,
			message: fmt.Sprintf("if_version: the pair is at version %d; nothing was applied", mismatch.Current.Version)}
		if key != nil {
			f.current = statePB(pairs.State{Key: *key, ArtifactRead: mismatch.Current.ArtifactRead,
				ArtifactInUserFeed: mismatch.Current.ArtifactInUserFeed, Version: mismatch.Current.Version, Consistency: pairs.Strong,
				ArtifactReadChangedAt:       mismatch.Current.ArtifactReadChangedAt,
				ArtifactInUserFeedChangedAt: mismatch.Current.ArtifactInUserFeedChangedAt})
		}
		return f
	case errors.Is(err, entities.ErrIdempotencyKeyReused):
		return &failure{code: codes.FailedPrecondition, reason: ReasonIdempotencyKeyReused, field: "idempotency_key",
			message: "idempotency_key: this key was used before for a different command on this pair"}
	case errors.Is(err, pairs.ErrReadModelNotConfigured):
		return &failure{code: codes.FailedPrecondition, reason: ReasonReadModelNotConfigured, message: err.Error()}
	case errors.Is(err, readmodel.ErrBadPageToken):
		return &failure{code: codes.InvalidArgument, reason: ReasonInvalidArgument, field: "page_token",
			message: "page_token: is not a token this service issued"}
	case errors.Is(err, readmodel.ErrUnavailable):
		logger.WarnContext(ctx, "Read model unavailable", "error", err)
		return &failure{code: codes.Unavailable, reason: ReasonReadModelUnavailable, retry: s.opts.RetryAfter,
			message: "the read model (Cassandra) is unavailable; retry later"}
	case errors.Is(err, readmodel.ErrTimeout), errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, entities.ErrTimeout):
		logger.WarnContext(ctx, "Read model timed out", "error", err)
		return &failure{code: codes.DeadlineExceeded, reason: ReasonReadModelTimeout,
			message: "the read model (Cassandra) did not answer in time"}
	case errors.Is(err, entities.ErrUnavailable):
		logger.WarnContext(ctx, "Temporal unavailable", "error", err)
		return &failure{code: codes.Unavailable, reason: ReasonTemporalUnavailable, retry: s.opts.RetryAfter,
			message: "the entity store (Temporal) is unavailable or overloaded; retry later"}
	case errors.Is(err, entities.ErrEntityStuck):
		logger.ErrorContext(ctx, "Entity stuck", "error", err)
		return &failure{code: codes.Unavailable, reason: ReasonEntityStuck, retry: s.opts.RetryAfter,
			message: "this pair's entity cannot run (its workflow task keeps failing); its writes are kept, an operator must act (see `artifactstate stuck`)"}
	case errors.Is(err, entities.ErrTimeout):
		logger.WarnContext(ctx, "Temporal timed out", "error", err)
		msg := fmt.Sprintf("the entity store (Temporal) did not answer within %v", s.opts.RequestTimeout)
		if write {
			msg += "; the command may or may not have been applied: retry it with the same idempotency_key"
		}
		return &failure{code: codes.DeadlineExceeded, reason: ReasonTemporalTimeout, message: msg}
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		msg := "the client cancelled the call"
		if write {
			msg += "; the command may or may not have been applied"
		}
		logger.InfoContext(ctx, "Client cancelled the call", "error", err)
		return &failure{code: codes.Canceled, reason: ReasonCancelled, message: msg}
	}
	logger.ErrorContext(ctx, "Request failed", "error", err)
	return &failure{code: codes.Internal, reason: ReasonInternal, message: "internal error"}
}
