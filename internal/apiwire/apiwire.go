// Package apiwire is what the APIs put on the wire that their clients read
// too: the gRPC service's name, the domain of its error details, and every
// outcome a failed call can have, with the HTTP status and error code and
// the gRPC code and reason that say it. Both APIs and the load generator
// read this one table. It imports nothing of the service, so a client that
// uses it links no server.
package apiwire

import (
	"net/http"
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
)

// ServiceName is the full name of the gRPC API's service, as health checks
// and reflection name it.
const ServiceName = "artifactstate.v1.ArtifactStateService"

// ErrorDomain is the domain of every google.rpc.ErrorInfo the gRPC API sends.
const ErrorDomain = "artifactstate"

// Outcome is one way a call fails, as both APIs answer it.
type Outcome struct {
	// Reason is the gRPC API's google.rpc.ErrorInfo reason (and
	// Error.reason): the HTTP error code in gRPC's style, finer where the
	// cause matters to an operator.
	Reason string
	// Code is the gRPC status code.
	Code codes.Code
	// HTTPStatus and HTTPCode are the HTTP API's status and the "code" of
	// its JSON error body.
	HTTPStatus int
	HTTPCode   string
}

// StatusClientClosedRequest is the HTTP status of a request whose client
// went away (nginx's 499: no standard status says it).
const StatusClientClosedRequest = 499

// The outcomes. Both precondition failures are FailedPrecondition (a retry
// of the same request fails the same way); their reasons tell them apart.
var (
	InvalidArgument        = Outcome{"INVALID_ARGUMENT", codes.InvalidArgument, http.StatusBadRequest, "invalid_argument"}
	VersionMismatch        = Outcome{"VERSION_MISMATCH", codes.FailedPrecondition, http.StatusPreconditionFailed, "precondition_failed"}
	IdempotencyKeyReused   = Outcome{"IDEMPOTENCY_KEY_REUSED", codes.FailedPrecondition, http.StatusUnprocessableEntity, "idempotency_key_reused"}
	ReadModelNotConfigured = Outcome{"READ_MODEL_NOT_CONFIGURED", codes.FailedPrecondition, http.StatusServiceUnavailable, "read_model_not_configured"}
	TemporalUnavailable    = Outcome{"TEMPORAL_UNAVAILABLE", codes.Unavailable, http.StatusServiceUnavailable, "unavailable"}
	ReadModelUnavailable   = Outcome{"READ_MODEL_UNAVAILABLE", codes.Unavailable, http.StatusServiceUnavailable, "unavailable"}
	EntityStuck            = Outcome{"ENTITY_STUCK", codes.Unavailable, http.StatusServiceUnavailable, "entity_unavailable"}
	TemporalTimeout        = Outcome{"TEMPORAL_TIMEOUT", codes.DeadlineExceeded, http.StatusGatewayTimeout, "timeout"}
	ReadModelTimeout       = Outcome{"READ_MODEL_TIMEOUT", codes.DeadlineExceeded, http.StatusGatewayTimeout, "timeout"}
	Cancelled              = Outcome{"CANCELLED", codes.Canceled, StatusClientClosedRequest, "client_closed_request"}
	Unauthenticated        = Outcome{"UNAUTHENTICATED", codes.Unauthenticated, http.StatusUnauthorized, "unauthenticated"}
	PermissionDenied       = Outcome{"PERMISSION_DENIED", codes.PermissionDenied, http.StatusForbidden, "permission_denied"}
	RateLimited            = Outcome{"RATE_LIMITED", codes.ResourceExhausted, http.StatusTooManyRequests, "rate_limited"}
	Internal               = Outcome{"INTERNAL", codes.Internal, http.StatusInternalServerError, "internal"}
)

// Outcomes lists every outcome.
var Outcomes = []Outcome{InvalidArgument, VersionMismatch, IdempotencyKeyReused, ReadModelNotConfigured,
	TemporalUnavailable, ReadModelUnavailable, EntityStuck, TemporalTimeout, ReadModelTimeout, Cancelled,
	Unauthenticated, PermissionDenied, RateLimited, Internal}

// CommandKindEnum is the name of a command's value in the proto enum
// CommandKind: COMMAND_KIND_ and the command's name (workflows.CommandKinds)
// in upper snake case, so setArtifactReadByUser is
// COMMAND_KIND_SET_ARTIFACT_READ_BY_USER.
func CommandKindEnum(kind string) string {
	var b strings.Builder
	b.WriteString("COMMAND_KIND_")
	for _, r := range kind {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// ByReason is the outcome of an ErrorInfo reason, if this is one.
func ByReason(reason string) (Outcome, bool) {
	for _, o := range Outcomes {
		if o.Reason == reason {
			return o, true
		}
	}
	return Outcome{}, false
}
