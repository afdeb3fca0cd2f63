package grpcapi

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// readiness sets the serving status of the health service ("" and
// ServiceName) from Temporal's readiness, checked every interval: SERVING
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
	r.health.SetServingStatus(ServiceName, s)
}
