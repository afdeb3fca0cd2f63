// Package tracing sets up OpenTelemetry tracing: spans from the HTTP request
// through the Temporal client into the entity workflow and its activity,
// exported over OTLP/gRPC. Off unless tracing.otlpEndpoint is set.
package tracing

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.uber.org/fx"
	"google.golang.org/grpc/credentials"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/privacy"
	"github.com/artifactstate/artifactstate/internal/tlsfiles"
)

// Tracing is the process's tracing; the zero value is tracing off.
type Tracing struct {
	provider    *sdktrace.TracerProvider
	interceptor interceptor.Interceptor
}

// Enabled reports whether spans are recorded.
func (t *Tracing) Enabled() bool { return t != nil && t.provider != nil }

// Interceptors are the Temporal client interceptors that carry spans into
// workflows and activities (none when tracing is off).
func (t *Tracing) Interceptors() []interceptor.ClientInterceptor {
	if !t.Enabled() {
		return nil
	}
	return []interceptor.ClientInterceptor{t.interceptor}
}

// Option changes what New and WithExporter build.
type Option func(*options)

type options struct{ redactor *privacy.Redactor }

// WithRedactor rewrites user IDs in every span before it is exported
// (privacy.userIds).
func WithRedactor(r *privacy.Redactor) Option { return func(o *options) { o.redactor = r } }

// New exports to cfg.OTLPEndpoint over TLS (cfg.CAFile's roots or the
// system's, cfg.CertFile for mTLS) unless cfg.Insecure, or returns tracing
// off when the endpoint is empty.
func New(ctx context.Context, cfg config.Tracing, version string, opts ...Option) (*Tracing, error) {
	if cfg.OTLPEndpoint == "" {
		return &Tracing{}, nil
	}
	grpcOpts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint)}
	if cfg.Insecure {
		grpcOpts = append(grpcOpts, otlptracegrpc.WithInsecure())
	} else {
		tlsConfig, err := tlsfiles.ClientConfig(cfg.CAFile, cfg.CertFile, cfg.KeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("tracing TLS: %w", err)
		}
		grpcOpts = append(grpcOpts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsConfig)))
	}
	exporter, err := otlptracegrpc.New(ctx, grpcOpts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", cfg.OTLPEndpoint, err)
	}
	return WithExporter(exporter, cfg, version, opts...)
}

// WithExporter is New with a given exporter (tests use an in-memory one).
// It installs the provider and W3C trace-context propagation globally.
func WithExporter(exporter sdktrace.SpanExporter, cfg config.Tracing, version string, opts ...Option) (*Tracing, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	exporter = privacy.Exporter(exporter, o.redactor)
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	ic, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	return &Tracing{provider: provider, interceptor: ic}, nil
}

// ForceFlush exports the spans recorded so far.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.provider.ForceFlush(ctx)
}

// Shutdown flushes the spans not yet exported.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Version is the build's version, supplied by the command.
type Version string

// Module provides *Tracing and flushes it on stop.
var Module = fx.Module("tracing",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Tracing, userIDs config.Privacy, v Version, logger *slog.Logger) (*Tracing, error) {
		redactor, err := privacy.New(userIDs)
		if err != nil {
			return nil, err
		}
		t, err := New(context.Background(), cfg, string(v), WithRedactor(redactor))
		if err != nil {
			return nil, err
		}
		if t.Enabled() {
			logger.Info("Tracing to OTLP", "endpoint", cfg.OTLPEndpoint, "sampleRatio", cfg.SampleRatio)
		}
		lc.Append(fx.StopHook(t.Shutdown))
		return t, nil
	}),
)
