package temporalclient

import (
	"context"
	"sync"

	"google.golang.org/grpc"
)

// The SDK retries Unavailable and ResourceExhausted until the caller's
// deadline and then reports only DeadlineExceeded. Attempts keeps the error of
// the last attempt so a caller can tell "Temporal is down or overloaded"
// (503) from "Temporal is slow" (504).

type attemptsKey struct{}

// Attempts records the outcome of every gRPC attempt made with a context
// from WithAttempts.
type Attempts struct {
	mu   sync.Mutex
	last error
}

// WithAttempts returns a context whose Temporal calls are recorded in the
// returned Attempts.
func WithAttempts(ctx context.Context) (context.Context, *Attempts) {
	a := &Attempts{}
	return context.WithValue(ctx, attemptsKey{}, a), a
}

// LastError is the error of the most recent attempt, nil if it succeeded or
// none was made.
func (a *Attempts) LastError() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// recordAttempts runs inside the SDK's retry loop, once per attempt.
func recordAttempts(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if a, ok := ctx.Value(attemptsKey{}).(*Attempts); ok {
		a.mu.Lock()
		a.last = err
		a.mu.Unlock()
	}
	return err
}
