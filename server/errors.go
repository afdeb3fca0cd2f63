package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/apierror"
	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/auth"
)

// apiError is every non-2xx answer: {"code":...,"error":...,"field":...}.
type apiError struct {
	status int
	Code   string `json:"code"`
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
}

// answer is the apiError of outcome o.
func answer(o apiwire.Outcome, msg string) *apiError {
	return &apiError{status: o.HTTPStatus, Code: o.HTTPCode, Error: msg}
}

func invalidField(field, reason string) *apiError {
	e := answer(apiwire.InvalidArgument, field+": "+reason)
	e.Field = field
	return e
}

// The answers of the HTTP transport alone: requests it cannot read.

func malformed(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Code: "malformed_request", Error: fmt.Sprintf(format, args...)}
}

func bodyTooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Error: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

// httpDialect names, in the messages, the HTTP API's fields.
var httpDialect = apierror.Dialect{
	IdempotencyKey: IdempotencyKeyHeader, IfVersion: "If-Match", PageToken: "pageToken",
	KeyReused: "this Idempotency-Key was used before for a different command on this pair",
	Gone:      "closed the request",
}

// render writes e; 503 answers carry Retry-After.
func (s *Server) render(c *gin.Context, e *apiError) {
	if e.status == http.StatusServiceUnavailable {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(s.cfg.RetryAfter.Seconds()))))
	}
	writeJSON(c, e.status, e)
}

// fail answers a request whose call to the service failed; a version
// mismatch with the pair's current state and its version as the ETag.
func (s *Server) fail(c *gin.Context, err error) {
	f := s.classify(c, err)
	if f.Current != nil {
		c.Header("ETag", etag(f.Current.Version))
		writeJSON(c, f.HTTPStatus, preconditionFailed{Code: f.HTTPCode, Error: f.Message, Current: toPair(*f.Current)})
		return
	}
	s.render(c, failed(f))
}

// classify maps a failed call to its answer (internal/apierror), and logs
// why.
func (s *Server) classify(c *gin.Context, err error) apierror.Failure {
	return s.failures.Classify(c.Request.Context(), err, isWrite(c))
}

// failed is the error body of f.
func failed(f apierror.Failure) *apiError {
	e := answer(f.Outcome, f.Message)
	e.Field = f.Field
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
