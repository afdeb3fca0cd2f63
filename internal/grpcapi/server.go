// Package grpcapi is the gRPC API (proto/artifactstate/v1): the same
// operations as the HTTP API, on the application service (internal/pairs),
// with the same validation and the same outcomes (internal/apierror) as
// gRPC statuses (errors.go); a Session stream
// (session.go); gRPC health checking that follows Temporal's readiness
// (health.go); server reflection; Prometheus metrics from the grpc-ecosystem
// interceptors; OpenTelemetry tracing; TLS.
package grpcapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/artifactstate/artifactstate/gen/artifactstate/v1"
	"github.com/artifactstate/artifactstate/internal/apierror"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/pairs"
)

// Authorizer decides whether the caller of ctx may read and write the pairs
// of userID; nil lets every caller use every pair. An error that is a
// status with code Unauthenticated answers Unauthenticated, any other
// PermissionDenied. Authentication itself (who the caller is) belongs in an
// interceptor (Deps.UnaryInterceptors, Deps.StreamInterceptors) that puts
// the caller in the context.
type Authorizer func(ctx context.Context, userID string) error

// Options tune the server.
type Options struct {
	// RequestTimeout is api.requestTimeout, which bounds the calls of
	// Deps.Pairs; the message of a timeout names it.
	RequestTimeout time.Duration
	// RetryAfter is the RetryInfo of Unavailable answers (api.retryAfter).
	RetryAfter time.Duration
	// HealthInterval is how often Temporal's readiness is checked for the
	// health service (default 5s).
	HealthInterval time.Duration
}

// Deps are what the server uses.
type Deps struct {
	// Pairs is the service every call uses; without a read model the calls
	// served from it answer FailedPrecondition (READ_MODEL_NOT_CONFIGURED).
	Pairs *pairs.Service
	// Metrics may be nil: no gRPC metrics. Otherwise the grpc_server_*
	// metrics are registered on its registry.
	Metrics *metrics.Metrics
	// Tracing starts a span per call (OpenTelemetry, otelgrpc).
	Tracing bool
	// TLS, when set, serves TLS (see ServerTLS).
	TLS *tls.Config
	// Authorize, when set, checks every pair a request names.
	Authorize Authorizer
	// UnaryInterceptors and StreamInterceptors run after metrics, logging
	// and panic recovery, before the handlers (authentication goes here).
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor
	Logger             *slog.Logger
}

// Server is the gRPC server of the API.
type Server struct {
	grpc      *grpc.Server
	health    *health.Server
	service   *service
	stopOnce  sync.Once
	readiness *readiness
	logger    *slog.Logger
}

// New builds the server; Serve starts it.
func New(o Options, d Deps) (*Server, error) {
	if o.HealthInterval <= 0 {
		o.HealthInterval = 5 * time.Second
	}
	logger := d.Logger.With("component", "grpc")
	svc := &service{opts: o, pairs: d.Pairs, authorize: d.Authorize, logger: logger, stopping: make(chan struct{}),
		failures: apierror.Classifier{Dialect: grpcDialect, RequestTimeout: o.RequestTimeout, Logger: logger}}

	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	var serverMetrics *grpcprom.ServerMetrics
	if d.Metrics != nil {
		serverMetrics = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60})))
		if err := d.Metrics.Registry.Register(serverMetrics); err != nil {
			return nil, fmt.Errorf("register the gRPC metrics: %w", err)
		}
		unary = append(unary, serverMetrics.UnaryServerInterceptor())
		stream = append(stream, serverMetrics.StreamServerInterceptor())
	}
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall), logging.WithLevels(logLevel)}
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "Handler panicked", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})}
	unary = append(unary, logging.UnaryServerInterceptor(slogAdapter(logger), logOpts...), recovery.UnaryServerInterceptor(recoverOpts...))
	stream = append(stream, logging.StreamServerInterceptor(slogAdapter(logger), logOpts...), recovery.StreamServerInterceptor(recoverOpts...))
	unary = append(unary, d.UnaryInterceptors...)
	stream = append(stream, d.StreamInterceptors...)

	opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...)}
	if d.Tracing {
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler()))
	}
	if d.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(d.TLS)))
	}
	g := grpc.NewServer(opts...)
	pb.RegisterArtifactStateServiceServer(g, svc)
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, &stoppingHealth{Server: h, stopping: svc.stopping})
	reflection.Register(g)
	if serverMetrics != nil {
		serverMetrics.InitializeMetrics(g)
	}
	return &Server{grpc: g, health: h, service: svc, logger: logger,
		readiness: newReadiness(h, d.Pairs.Ready, o.HealthInterval, logger)}, nil
}

// Serve serves on ln until Stop; the health service reports NOT_SERVING
// until Temporal answers.
func (s *Server) Serve(ln net.Listener) error {
	s.readiness.start()
	err := s.grpc.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop reports NOT_SERVING, stops accepting calls and waits for those in
// flight until ctx is done, then closes every connection. Long-lived
// streams end at once: health watches, and sessions once they have
// answered every request they started (with Unavailable: resend the rest
// elsewhere).
func (s *Server) Stop(ctx context.Context) {
	s.readiness.stop()
	s.health.Shutdown()
	s.stopOnce.Do(func() { close(s.service.stopping) })
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.logger.Warn("gRPC calls still running at the end of the shutdown timeout; closing them")
		s.grpc.Stop()
		<-done
	}
}

// logLevel is the level of a call's log line: debug when it succeeded, as
// the HTTP API's, louder for failures of the service than of the client.
func logLevel(code codes.Code) logging.Level {
	switch code {
	case codes.OK:
		return logging.LevelDebug
	case codes.Unavailable, codes.DeadlineExceeded:
		return logging.LevelWarn
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		return logging.LevelError
	}
	return logging.LevelInfo
}

func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, level logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(level), msg, fields...)
	})
}
