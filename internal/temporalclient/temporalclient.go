// Package temporalclient builds the Temporal client every role shares, from
// the typed configuration.
package temporalclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.uber.org/fx"
	"google.golang.org/grpc"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/tracing"
)

// Options are what other parts of the process add to the client; the zero
// value is fine.
type Options struct {
	// Identity names this process in workflow histories (worker identity).
	Identity string
	// MetricsHandler receives the SDK's temporal_* metrics.
	MetricsHandler client.MetricsHandler
	// Interceptors carry tracing into workflows and activities.
	Interceptors []interceptor.ClientInterceptor
}

// New returns a lazily connecting client: it dials on first use, so an api
// process starts (and answers 503) while Temporal is down, and recovers
// without a restart when it comes back.
func New(cfg config.Temporal, logger *slog.Logger, o Options) (client.Client, error) {
	opts := client.Options{
		HostPort:       cfg.Address,
		Namespace:      cfg.Namespace,
		Identity:       o.Identity,
		MetricsHandler: o.MetricsHandler,
		Interceptors:   o.Interceptors,
		Logger:         sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
		ConnectionOptions: client.ConnectionOptions{
			DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(recordAttempts)},
		},
	}
	if cfg.Compression == "none" {
		opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	if cfg.TLS.Enabled {
		tlsConfig, err := loadTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts.ConnectionOptions.TLS = tlsConfig
	}
	if cfg.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.APIKey)
	}
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal client for %s/%s: %w", cfg.Address, cfg.Namespace, err)
	}
	return c, nil
}

func loadTLS(cfg config.TLS) (*tls.Config, error) {
	out := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("temporal.tls.caFile: no PEM certificate in %s", cfg.CAFile)
		}
		out.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls client certificate: %w", err)
		}
		out.Certificates = []tls.Certificate{cert}
	}
	return out, nil
}

// Module provides the client.Client, with metrics and tracing, and closes
// it on stop.
var Module = fx.Module("temporalclient",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Config, logger *slog.Logger, id Identity, m *metrics.Metrics, t *tracing.Tracing) (client.Client, error) {
		c, err := New(cfg.Temporal, logger, Options{Identity: string(id), MetricsHandler: m.Temporal(), Interceptors: t.Interceptors()})
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(func(context.Context) { c.Close() }))
		return c, nil
	}),
)

// Identity is how this process names itself to Temporal (worker identity in
// histories); provided by the command that builds the app.
type Identity string
