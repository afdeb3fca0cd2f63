// Package server is the REST API (gin): the original /artifactState contract
// and the /v1 API on the application service (internal/pairs), health
// endpoints, and JSON errors for everything that goes wrong. It translates
// requests and answers; what a failure answers is internal/apierror's.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"

	"github.com/artifactstate/artifactstate/internal/apierror"
	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/ops"
	"github.com/artifactstate/artifactstate/internal/pairs"
)

// Deps are what the handlers use.
type Deps struct {
	// Pairs is the service every endpoint calls.
	Pairs *pairs.Service
	// Metrics may be nil: no HTTP metrics. /metrics is served on the admin
	// listener (internal/ops), not here.
	Metrics *metrics.Metrics
	// Tracing starts a span per request (OpenTelemetry).
	Tracing bool
	// Middleware runs, in order, before every API route, not before health
	// and /openapi.yaml (rate limits, authentication: internal/apiguard).
	Middleware []gin.HandlerFunc
	// Authorize says whether the caller may use userID's pairs (403 if
	// not); nil lets everyone.
	Authorize func(ctx context.Context, userID string) error
	Logger    *slog.Logger
}

// Server holds the handlers' dependencies.
type Server struct {
	cfg       config.API
	pairs     *pairs.Service
	failures  apierror.Classifier
	authorize func(ctx context.Context, userID string) error
	logger    *slog.Logger
}

// NewHandler returns the API's HTTP handler.
func NewHandler(cfg config.API, d Deps) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, pairs: d.Pairs, authorize: d.Authorize, logger: d.Logger,
		failures: apierror.Classifier{Dialect: httpDialect, RequestTimeout: cfg.RequestTimeout, Logger: d.Logger}}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// Match routes on the escaped path, so a user ID may hold "%2F".
	r.UseRawPath = true
	r.Use(s.recover)
	if d.Tracing {
		r.Use(otelgin.Middleware("artifactstate-api"))
	}
	if d.Metrics != nil {
		r.Use(measure(d.Metrics))
	}
	r.Use(s.logRequests)
	r.NoRoute(func(c *gin.Context) {
		s.render(c, &apiError{status: http.StatusNotFound, Code: "not_found", Error: "no such endpoint: " + c.Request.URL.Path})
	})
	r.NoMethod(func(c *gin.Context) {
		s.render(c, &apiError{status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Error: c.Request.Method + " is not allowed on " + c.Request.URL.Path})
	})
	api := r.Group("", d.Middleware...)
	s.routeLegacy(api)
	s.routeV1(api)
	s.routeHealth(r)
	r.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", OpenAPI) })
	return r
}

func (s *Server) routeHealth(r gin.IRouter) {
	r.GET("/healthz", func(c *gin.Context) {
		writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), min(s.cfg.RequestTimeout, 2*time.Second))
		defer cancel()
		if err := s.pairs.Ready(ctx); err != nil {
			// The detail (hosts, internals) is for the log, not the caller.
			s.logger.WarnContext(ctx, "Not ready", "error", err)
			s.render(c, answer(apiwire.TemporalUnavailable, ops.NotReady))
			return
		}
		writeJSON(c, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// recover turns a panic into a logged 500 JSON answer.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			s.logger.ErrorContext(c.Request.Context(), "Handler panicked", "panic", p, "stack", string(debug.Stack()))
			c.Abort()
			s.render(c, answer(apiwire.Internal, "internal error"))
		}
	}()
	c.Next()
}

// measure records every request in the HTTP metrics, by route template
// ("unmatched" for 404s, so unknown paths cannot explode the label set).
func measure(m *metrics.Metrics) gin.HandlerFunc {
	inFlight := m.HTTPInFlight()
	return func(c *gin.Context) {
		start := time.Now()
		inFlight.Inc()
		defer inFlight.Dec()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		m.ObserveHTTP(route, c.Request.Method, strconv.Itoa(c.Writer.Status()), time.Since(start))
	}
}

// logRequests logs each request: debug when it succeeds, louder when not.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	level := slog.LevelDebug
	switch {
	case status >= 500:
		level = slog.LevelWarn
	case status >= 400:
		level = slog.LevelInfo
	}
	attrs := []any{"method", c.Request.Method, "route", c.FullPath(), "path", c.Request.URL.Path,
		"status", status, "duration", time.Since(start)}
	if key, ok := c.Get(keyParam); ok {
		attrs = append(attrs, "WorkflowID", key.(entityid.Key).WorkflowID())
	}
	s.logger.Log(c.Request.Context(), level, "HTTP request", attrs...)
}
