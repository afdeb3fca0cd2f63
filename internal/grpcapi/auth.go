package grpcapi

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/artifactstate/artifactstate/internal/apiwire"
	"github.com/artifactstate/artifactstate/internal/auth"
)

// The authentication of the gRPC API is the HTTP API's (internal/auth):
// the same credentials in the metadata keys of the same names
// ("authorization: Bearer <JWT or API key>", "x-api-key"), the principal
// put in the context for Authorizer (auth.Rules.AuthorizeContext). Health
// checks need no credentials (probes and load balancers); everything else,
// reflection included, does.

// UnaryAuthenticator authenticates every unary call but health checks.
func UnaryAuthenticator(a *auth.Authenticator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if exempt(info.FullMethod) {
			return handler(ctx, req)
		}
		ctx, err := authenticate(ctx, a)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamAuthenticator authenticates every stream but health watches.
func StreamAuthenticator(a *auth.Authenticator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if exempt(info.FullMethod) {
			return handler(srv, ss)
		}
		ctx, err := authenticate(ss.Context(), a)
		if err != nil {
			return err
		}
		return handler(srv, authedStream{ServerStream: ss, ctx: ctx})
	}
}

func exempt(fullMethod string) bool { return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") }

func authenticate(ctx context.Context, a *auth.Authenticator) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(key string) string {
		if v := md.Get(key); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	p, err := a.Principal(ctx, auth.Credentials{Authorization: first("authorization"), APIKey: first("x-api-key")})
	if err != nil {
		return ctx, authFailure(err).err()
	}
	return auth.WithPrincipal(ctx, p), nil
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s authedStream) Context() context.Context { return s.ctx }

// authFailure answers a refused request: Unauthenticated for an
// authentication failure (auth.ErrUnauthenticated, or a status with that
// code), PermissionDenied otherwise; the message is the reason safe to
// show the caller.
func authFailure(err error) *failure {
	msg := err.Error()
	var e *auth.Error
	if errors.As(err, &e) {
		msg = e.Reason
	} else if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	if errors.Is(err, auth.ErrUnauthenticated) || status.Code(err) == codes.Unauthenticated {
		return outcome(apiwire.Unauthenticated, msg)
	}
	return outcome(apiwire.PermissionDenied, msg)
}
