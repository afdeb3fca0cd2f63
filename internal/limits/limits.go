// Package limits sheds load before it hurts: token-bucket rate limits per
// client and for the whole process (429 with Retry-After), and a bound on
// concurrent calls to a dependency (fail fast instead of queueing until a
// timeout). The types are transport-neutral; Middleware applies the rate
// limits to gin, and a gRPC interceptor can call Allow the same way.
package limits

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/artifactstate/artifactstate/internal/config"
)

// ErrRateLimited: a request over a rate limit; RetryAfter says when a token
// will be available.
var ErrRateLimited = errors.New("rate limit exceeded")

// RateError is a rejected request.
type RateError struct {
	// Scope is "client" or "global".
	Scope      string
	RetryAfter time.Duration
}

func (e *RateError) Error() string {
	return fmt.Sprintf("%s rate limit exceeded; retry in %d s", e.Scope, e.RetryAfterSeconds())
}

func (e *RateError) Unwrap() error { return ErrRateLimited }

// RetryAfterSeconds is RetryAfter for the Retry-After header: whole
// seconds, at least 1.
func (e *RateError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// RateLimiter holds a global bucket and one bucket per client. Client
// buckets idle longer than it takes them to refill are dropped (a full
// bucket and a fresh one are the same), so memory follows the active
// clients; at most maxClients are kept.
type RateLimiter struct {
	cfg    config.RateLimit
	global *rate.Limiter // nil: no global limit

	mu         sync.Mutex
	clients    map[string]*client
	maxClients int
	lastSweep  time.Time
	now        func() time.Time
}

type client struct {
	limiter  *rate.Limiter
	lastSeen time.Time
}

// DefaultMaxClients bounds the client buckets kept at once.
const DefaultMaxClients = 100_000

// NewRateLimiter returns the limiter of cfg (rates of 0 are off).
func NewRateLimiter(cfg config.RateLimit) *RateLimiter {
	l := &RateLimiter{cfg: cfg, clients: map[string]*client{}, maxClients: DefaultMaxClients, now: time.Now}
	if cfg.Global > 0 {
		l.global = rate.NewLimiter(rate.Limit(cfg.Global), cfg.GlobalBurst)
	}
	return l
}

// Enabled reports whether any limit is on.
func (l *RateLimiter) Enabled() bool { return l.cfg.Global > 0 || l.cfg.PerClient > 0 }

// AllowGlobal takes a token from the global bucket, or says when to retry.
func (l *RateLimiter) AllowGlobal() error {
	if l.global == nil {
		return nil
	}
	return take(l.global, l.now(), "global")
}

// AllowClient takes a token from clientKey's bucket, or says when to retry.
func (l *RateLimiter) AllowClient(clientKey string) error {
	if l.cfg.PerClient <= 0 {
		return nil
	}
	now := l.now()
	return take(l.clientLimiter(clientKey, now), now, "client")
}

func take(lim *rate.Limiter, now time.Time, scope string) error {
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return &RateError{Scope: scope, RetryAfter: time.Second}
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // we do not wait: give the token back
		return &RateError{Scope: scope, RetryAfter: d}
	}
	return nil
}

func (l *RateLimiter) clientLimiter(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	refill := time.Duration(float64(l.cfg.PerClientBurst) / l.cfg.PerClient * float64(time.Second))
	if now.Sub(l.lastSweep) > max(refill, time.Second) || len(l.clients) >= l.maxClients {
		l.sweep(now, refill)
	}
	c, ok := l.clients[key]
	if !ok {
		c = &client{limiter: rate.NewLimiter(rate.Limit(l.cfg.PerClient), l.cfg.PerClientBurst)}
		l.clients[key] = c
	}
	c.lastSeen = now
	return c.limiter
}

// sweep drops the buckets that refilled; if still full, the oldest half.
func (l *RateLimiter) sweep(now time.Time, refill time.Duration) {
	l.lastSweep = now
	for k, c := range l.clients {
		if now.Sub(c.lastSeen) >= refill {
			delete(l.clients, k)
		}
	}
	if len(l.clients) < l.maxClients {
		return
	}
	var cutoff time.Time
	seen := make([]time.Time, 0, len(l.clients))
	for _, c := range l.clients {
		seen = append(seen, c.lastSeen)
	}
	cutoff = median(seen)
	for k, c := range l.clients {
		if !c.lastSeen.After(cutoff) {
			delete(l.clients, k)
		}
	}
}

func median(ts []time.Time) time.Time {
	slices.SortFunc(ts, time.Time.Compare)
	return ts[len(ts)/2]
}

// Clients is how many client buckets are held (for tests and metrics).
func (l *RateLimiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
