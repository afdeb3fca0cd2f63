package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
)

// apiError is every non-2xx answer: {"code":...,"error":...,"field":...}.
type apiError struct {
	status int
	Code   string `json:"code"`
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
}

func invalidField(field, reason string) *apiError {
	return &apiError{status: http.StatusBadRequest, Code: "invalid_argument", Field: field, Error: field + ": " + reason}
}

func malformed(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Code: "malformed_request", Error: fmt.Sprintf(format, args...)}
}

func bodyTooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Error: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

// render writes e; 503 answers carry Retry-After.
func (s *Server) render(c *gin.Context, e *apiError) {
	if e.status == http.StatusServiceUnavailable {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(s.cfg.RetryAfter.Seconds()))))
	}
	writeJSON(c, e.status, e)
}

// fail answers a request whose call to Temporal or the read model failed.
func (s *Server) fail(c *gin.Context, err error) {
	s.render(c, s.classify(c, err))
}

// classify maps a failed call to its answer, and logs why.
func (s *Server) classify(c *gin.Context, err error) *apiError {
	if e := s.failReadModel(c, err); e != nil {
		return e
	}
	ctx := c.Request.Context()
	logger := s.logger
	if key, ok := c.Get(keyParam); ok {
		logger = logger.With("WorkflowID", key.(entityid.Key).WorkflowID())
	}
	var e *apiError
	switch {
	case errors.Is(err, entities.ErrUnavailable):
		e = &apiError{status: http.StatusServiceUnavailable, Code: "unavailable",
			Error: "the entity store (Temporal) is unavailable or overloaded; retry later"}
		logger.WarnContext(ctx, "Temporal unavailable", "error", err)
	case errors.Is(err, entities.ErrEntityStuck):
		e = &apiError{status: http.StatusServiceUnavailable, Code: "entity_unavailable",
			Error: "this pair's entity cannot run (its workflow task keeps failing); its writes are kept, an operator must act (see `artifactstate stuck`)"}
		logger.ErrorContext(ctx, "Entity stuck", "error", err)
	case errors.Is(err, entities.ErrTimeout):
		msg := fmt.Sprintf("the entity store (Temporal) did not answer within %v", s.cfg.RequestTimeout)
		if isWrite(c) {
			msg += "; the command may or may not have been applied: retry it with the same Idempotency-Key"
		}
		e = &apiError{status: http.StatusGatewayTimeout, Code: "timeout", Error: msg}
		logger.WarnContext(ctx, "Temporal timed out", "error", err)
	case errors.Is(err, entities.ErrIdempotencyKeyReused):
		e = &apiError{status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Field: IdempotencyKeyHeader,
			Error: "this Idempotency-Key was used before for a different command on this pair"}
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// The client went away; nobody reads this answer.
		msg := "the client closed the request"
		if isWrite(c) {
			msg += "; the command may or may not have been applied"
		}
		e = &apiError{status: 499, Code: "client_closed_request", Error: msg}
		logger.InfoContext(ctx, "Client closed the request", "error", err)
	default:
		e = &apiError{status: http.StatusInternalServerError, Code: "internal", Error: "internal error"}
		logger.ErrorContext(ctx, "Request failed", "error", err)
	}
	return e
}

// isWrite reports whether the request is a command (a POST that is not a
// read of the original contract).
func isWrite(c *gin.Context) bool {
	_, ok := c.Get(writeParam)
	return ok
}

const writeParam = "artifactstate.write"

// allowed answers 403 (or 401) and returns false unless the caller may use
// userID's pairs.
func (s *Server) allowed(c *gin.Context, userID string) bool {
	if s.authorize == nil {
		return true
	}
	if err := s.authorize(c.Request.Context(), userID); err != nil {
		auth.Abort(c, err)
		return false
	}
	return true
}
