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
	"github.com/artifactstate/artifactstate/internal/apierror"
	"github.com/artifactstate/artifactstate/internal/apiwire"
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
	apiwire.Outcome
	message string
	field   string
	current *pb.PairState
	retry   time.Duration
}

// outcome is a failure without details.
func outcome(o apiwire.Outcome, message string) *failure {
	return &failure{Outcome: o, message: message}
}

// status is the failure as a gRPC status with its details.
func (f *failure) status() *status.Status {
	st := status.New(f.Code, f.message)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: f.Reason, Domain: apiwire.ErrorDomain}}
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
	e := &pb.Error{Code: int32(f.Code), Message: f.message, Reason: f.Reason, Field: f.field, Current: f.current}
	if f.retry > 0 {
		e.RetryDelay = durationpb.New(f.retry)
	}
	return e
}

// authError is a request the Authorizer refused.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// grpcDialect names, in the messages, the gRPC API's fields.
var grpcDialect = apierror.Dialect{
	IdempotencyKey: "idempotency_key", IfVersion: "if_version", PageToken: "page_token",
	KeyReused: "idempotency_key: this key was used before for a different command on this pair",
	Gone:      "cancelled the call",
}

// classify maps a failed request to its answer: a refused caller or an
// invalid field here, a failure of the service as internal/apierror says
// (and logged there). write says whether the request was a command (its
// timeout may or may not have applied it).
func (s *service) classify(ctx context.Context, err error, write bool) *failure {
	var denied *authError
	if errors.As(err, &denied) {
		s.logger.InfoContext(ctx, "Request refused", "error", err)
		return authFailure(denied.err)
	}
	var field *fieldError
	if errors.As(err, &field) {
		return &failure{Outcome: apiwire.InvalidArgument, message: field.Error(), field: field.field}
	}
	f := s.failures.Classify(ctx, err, write)
	out := &failure{Outcome: f.Outcome, message: f.Message, field: f.Field}
	if f.Current != nil {
		out.current = statePB(*f.Current)
	}
	if f.Code == codes.Unavailable {
		out.retry = s.opts.RetryAfter
	}
	return out
}
