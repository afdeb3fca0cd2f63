package auth

import (
	"encoding/json"
	"errors"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/apiwire"
)

// Middleware authenticates every request it sees: the principal goes into
// the request's context (FromContext), a failure is answered 401.
func Middleware(a *Authenticator) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := a.Principal(c.Request.Context(), Credentials{
			Authorization: c.GetHeader("Authorization"),
			APIKey:        c.GetHeader("X-API-Key"),
		})
		if err != nil {
			c.Header("WWW-Authenticate", `Bearer realm="artifactstate", error="invalid_token"`)
			Abort(c, err)
			return
		}
		c.Request = c.Request.WithContext(WithPrincipal(c.Request.Context(), p))
		c.Next()
	}
}

// RequireAdmin answers 403 unless the caller holds an admin scope; it runs
// after Middleware.
func RequireAdmin(rules Rules) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, _ := FromContext(c.Request.Context())
		if err := rules.AuthorizeAdmin(p); err != nil {
			Abort(c, err)
			return
		}
		c.Next()
	}
}

// Abort answers an error of this package in the API's error shape:
// 401 unauthenticated or 403 permission_denied.
func Abort(c *gin.Context, err error) {
	o := apiwire.PermissionDenied
	if errors.Is(err, ErrUnauthenticated) {
		o = apiwire.Unauthenticated
	}
	reason := err.Error()
	var e *Error
	if errors.As(err, &e) {
		reason = e.Reason
	}
	WriteError(c, o.HTTPStatus, ErrorBody{Code: o.HTTPCode, Error: reason})
}

// WriteError aborts c with body as compact JSON (Content-Type
// application/json, as every answer of the API).
func WriteError(c *gin.Context, status int, body ErrorBody) {
	raw, err := json.Marshal(body)
	if err != nil {
		raw = []byte(`{"code":"internal","error":"cannot encode the response"}`)
	}
	c.Abort()
	c.Data(status, "application/json", raw)
}

// ErrorBody is the API's error shape (server/errors.go).
type ErrorBody struct {
	Code  string `json:"code"`
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}
