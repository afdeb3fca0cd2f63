// Package temporalclient builds the Temporal client every role shares, from
// the typed configuration.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.uber.org/fx"
	"google.golang.org/grpc"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/metrics"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
	"github.com/artifactstate/artifactstate/internal/tlsfiles"
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
	// DataConverter encodes payloads (nil: the SDK's default); failures
	// are encoded through it too.
	DataConverter converter.DataConverter
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
	if o.DataConverter != nil {
		opts.DataConverter = o.DataConverter
		opts.FailureConverter = payloadcrypt.FailureConverter(o.DataConverter)
	}
	if cfg.TLS.Enabled {
		tlsConfig, err := tlsfiles.ClientConfig(cfg.TLS.CAFile, cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ServerName)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls: %w", err)
		}
		opts.ConnectionOptions.TLS = tlsConfig
	}
	switch {
	case cfg.APIKey != "":
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.APIKey)
	case cfg.APIKeyFile != "":
		key := &secretFile{path: cfg.APIKeyFile}
		if _, err := key.read(context.Background()); err != nil {
			return nil, fmt.Errorf("temporal.apiKeyFile: %w", err)
		}
		opts.Credentials = client.NewAPIKeyDynamicCredentials(key.read)
	}
	c, err := client.NewLazyClient(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal client for %s/%s: %w", cfg.Address, cfg.Namespace, err)
	}
	return c, nil
}

// secretFile reads a secret from its file on every call, so a rotated
// Kubernetes Secret is used from the next call on (no restart).
type secretFile struct{ path string }

func (f *secretFile) read(context.Context) (string, error) {
	return config.ReadSecretFile(f.path)
}

// Module provides the client.Client, with metrics, tracing and (when
// temporal.encryption.keysFile is set) payload encryption, and closes it
// on stop. It also provides the converter.DataConverter every reader of
// payloads outside the SDK must use, and the *payloadcrypt.Codec (nil when
// payloads are not encrypted).
var Module = fx.Module("temporalclient",
	fx.Provide(Codec, DataConverter),
	fx.Provide(func(lc fx.Lifecycle, cfg config.Temporal, logger *slog.Logger, id Identity, m *metrics.Metrics, t *tracing.Tracing,
		dc converter.DataConverter) (client.Client, error) {
		c, err := New(cfg, logger, Options{Identity: string(id), MetricsHandler: m.Temporal(), Interceptors: t.Interceptors(),
			DataConverter: dc})
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StopHook(func(context.Context) { c.Close() }))
		return c, nil
	}),
)

// Codec is the payload codec of cfg: nil unless
// temporal.encryption.keysFile is set.
func Codec(cfg config.Temporal, logger *slog.Logger) (*payloadcrypt.Codec, error) {
	if cfg.Encryption.KeysFile == "" {
		return nil, nil
	}
	c, err := payloadcrypt.Load(cfg.Encryption.KeysFile)
	if err != nil {
		return nil, err
	}
	logger.Info("Payloads to Temporal are encrypted", "currentKeyID", c.CurrentKeyID())
	return c, nil
}

// DataConverter is the converter of codec (the SDK's default when nil).
func DataConverter(codec *payloadcrypt.Codec) converter.DataConverter {
	return payloadcrypt.DataConverter(codec)
}

// Identity is how this process names itself to Temporal (worker identity in
// histories); provided by the command that builds the app.
type Identity string
