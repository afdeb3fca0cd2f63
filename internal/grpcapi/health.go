package grpcapi

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/artifactstate/artifactstate/internal/apiwire"
)

// readiness sets the serving status of the health service ("" and
// apiwire.ServiceName) from Temporal's readiness, checked every interval: SERVING
// while Temporal answers, NOT_SERVING otherwise, as /readyz answers 200 or
// 503 on the HTTP port.
type readiness struct {
	health   *health.Server
	ready    func(context.Context) error
	interval time.Duration
	logger   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	done   chan struct{} // closed when run returns (or stop ran first)
}

func newReadiness(h *health.Server, ready func(context.Context) error, interval time.Duration, logger *slog.Logger) *readiness {
	ctx, cancel := context.WithCancel(context.Background())
	return &readiness{health: h, ready: ready, interval: interval, logger: logger, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// start reports NOT_SERVING and starts checking.
func (r *readiness) start() {
	r.once.Do(func() {
		r.set(healthpb.HealthCheckResponse_NOT_SERVING)
		go r.run(r.ctx)
	})
}

// stop stops checking (start does nothing after it).
func (r *readiness) stop() {
	r.cancel()
	r.once.Do(func() { close(r.done) })
	<-r.done
}

func (r *readiness) run(ctx context.Context) {
	defer close(r.done)
	last := healthpb.HealthCheckResponse_NOT_SERVING
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		check, cancel := context.WithTimeout(ctx, min(r.interval, 2*time.Second))
		err := r.ready(check)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			now = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if now != last {
			r.logger.Info("gRPC health", "status", now.String(), "error", err)
			r.set(now)
			last = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *readiness) set(s healthpb.HealthCheckResponse_ServingStatus) {
	r.health.SetServingStatus("", s)
	r.health.SetServingStatus(apiwire.ServiceName, s)
}

// stoppingHealth is the health service whose Watch streams end when the
// server stops (after the NOT_SERVING update), so that a graceful stop does
// not wait for clients that watch the health status.
type stoppingHealth struct {
	*health.Server
	stopping <-chan struct{}
}

func (h *stoppingHealth) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-h.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h.Server.Watch(req, watchStream{Health_WatchServer: stream, ctx: ctx})
	select {
	case <-h.stopping:
		return status.Error(codes.Unavailable, "the server is stopping")
	default:
		return err
	}
}

// watchStream is a Watch stream with the context stoppingHealth cancels.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (w watchStream) Context() context.Context { return w.ctx }
