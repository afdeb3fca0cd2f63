package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/limits"
)

// The gRPC API has the HTTP API's rate limits (api.rateLimit, a budget of
// its own): the global bucket before authentication, the client's (the
// authenticated subject, else the peer's address) after it. A call over a
// limit fails with ResourceExhausted and RetryInfo; health checks are not
// limited.

// UnaryGlobalLimit applies the global bucket to unary calls.
func UnaryGlobalLimit(l *limits.RateLimiter) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !exempt(info.FullMethod) {
			if err := l.AllowGlobal(); err != nil {
				return nil, rateLimited(err)
			}
		}
		return handler(ctx, req)
	}
}

// UnaryClientLimit applies the caller's bucket to unary calls.
func UnaryClientLimit(l *limits.RateLimiter) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !exempt(info.FullMethod) {
			if err := l.AllowClient(clientKey(ctx)); err != nil {
				return nil, rateLimited(err)
			}
		}
		return handler(ctx, req)
	}
}

// StreamLimit applies both buckets when a stream opens (a session's
// requests are bounded by its own concurrency).
func StreamLimit(l *limits.RateLimiter) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !exempt(info.FullMethod) {
			if err := l.AllowGlobal(); err != nil {
				return rateLimited(err)
			}
			if err := l.AllowClient(clientKey(ss.Context())); err != nil {
				return rateLimited(err)
			}
		}
		return handler(srv, ss)
	}
}

// clientKey names the caller for the client buckets, as the HTTP API does.
func clientKey(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return "subject:" + p.Subject
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host, _, err := net.SplitHostPort(p.Addr.String())
		if err != nil {
			host = p.Addr.String()
		}
		return "ip:" + host
	}
	return "unknown"
}

func rateLimited(err error) error {
	retry := time.Second
	var re *limits.RateError
	if errors.As(err, &re) {
		retry = time.Duration(re.RetryAfterSeconds()) * time.Second
	}
	st := status.New(apiwire.RateLimited.Code, fmt.Sprintf("rate limit: %v; retry after %v", err, retry))
	if withDetails, derr := st.WithDetails(
		&errdetails.ErrorInfo{Reason: apiwire.RateLimited.Reason, Domain: apiwire.ErrorDomain},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)},
	); derr == nil {
		st = withDetails
	}
	return st.Err()
}
