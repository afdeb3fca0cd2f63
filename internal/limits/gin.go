package limits

import (
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/auth"
)

// Global applies the global bucket. It runs before authentication, so a
// flood of bad credentials cannot make the process verify signatures at
// any rate it likes.
func Global(l *RateLimiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := l.AllowGlobal(); err != nil {
			reject(c, err)
			return
		}
		c.Next()
	}
}

// PerClient applies the client buckets: the authenticated subject's (after
// auth.Middleware), else the remote address's. Behind a proxy every
// unauthenticated caller shares the proxy's address: turn authentication
// on there.
func PerClient(l *RateLimiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := l.AllowClient(ClientKey(c.Request)); err != nil {
			reject(c, err)
			return
		}
		c.Next()
	}
}

// ClientKey names the caller of r for the client buckets.
func ClientKey(r *http.Request) string {
	if p, ok := auth.FromContext(r.Context()); ok {
		return "subject:" + p.Subject
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

func reject(c *gin.Context, err error) {
	var re *RateError
	retry := 1
	if errors.As(err, &re) {
		retry = re.RetryAfterSeconds()
	}
	c.Header("Retry-After", strconv.Itoa(retry))
	auth.WriteError(c, apiwire.RateLimited.HTTPStatus, auth.ErrorBody{Code: apiwire.RateLimited.HTTPCode, Error: err.Error()})
}
