package grpcapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/limits"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/tlsfiles"
	"github.com/artifactstate/artifactstate/internal/tracing"
)

// Module serves the gRPC API on grpc.listenAddress for the app's lifetime
// (nothing when it is empty). On stop it reports NOT_SERVING, stops
// accepting calls and waits (up to api.shutdownTimeout) for those in flight.
var Module = fx.Module("grpcapi",
	fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, cfg config.GRPC, api config.API, p *pairs.Service,
		a *auth.Authenticator, m *metrics.Metrics, t *tracing.Tracing, logger *slog.Logger) error {
		if cfg.ListenAddress == "" {
			logger.Info("gRPC API off (grpc.listenAddress is empty)")
			return nil
		}
		d := Deps{Pairs: p, Metrics: m, Tracing: t.Enabled(), Logger: logger}
		rl := limits.NewRateLimiter(api.RateLimit)
		if rl.Enabled() {
			d.UnaryInterceptors = append(d.UnaryInterceptors, UnaryGlobalLimit(rl))
		}
		if a != nil {
			d.Authorize = a.Rules().AuthorizeContext
			d.UnaryInterceptors = append(d.UnaryInterceptors, UnaryAuthenticator(a))
			d.StreamInterceptors = append(d.StreamInterceptors, StreamAuthenticator(a))
		}
		if rl.Enabled() {
			d.UnaryInterceptors = append(d.UnaryInterceptors, UnaryClientLimit(rl))
			d.StreamInterceptors = append(d.StreamInterceptors, StreamLimit(rl))
		}
		var err error
		if d.TLS, err = ServerTLS(cfg); err != nil {
			return err
		}
		srv, err := New(Options{RequestTimeout: api.RequestTimeout, RetryAfter: api.RetryAfter}, d)
		if err != nil {
			return err
		}
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				ln, err := net.Listen("tcp", cfg.ListenAddress)
				if err != nil {
					return fmt.Errorf("grpc.listenAddress %s: %w", cfg.ListenAddress, err)
				}
				logger.Info("gRPC API listening", "address", ln.Addr().String(), "tls", d.TLS != nil)
				go func() {
					if err := srv.Serve(ln); err != nil {
						logger.Error("gRPC server failed", "error", err)
						if err := sd.Shutdown(fx.ExitCode(1)); err != nil {
							logger.Error("Cannot shut down", "error", err)
						}
					}
				}()
				return nil
			},
			OnStop: func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, api.ShutdownTimeout)
				defer cancel()
				srv.Stop(ctx)
				logger.Info("gRPC API stopped")
				return nil
			},
		})
		return nil
	}),
)

// ServerTLS is the TLS configuration of grpc: nil when grpc.tls is off;
// the certificate is re-read when its files change (tlsfiles), and
// clientCAFile makes it mTLS.
func ServerTLS(c config.GRPC) (*tls.Config, error) {
	if !c.TLS.Enabled() {
		return nil, nil
	}
	cert, err := tlsfiles.Load(c.TLS.CertFile, c.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("grpc.tls: %w", err)
	}
	t := tlsfiles.ServerConfig(cert)
	if c.ClientCAFile != "" {
		pool, err := tlsfiles.CertPool(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("grpc.clientCAFile: %w", err)
		}
		t.ClientCAs, t.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return t, nil
}
