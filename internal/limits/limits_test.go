package limits

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/auth"
	"github.com/artifactstate/artifactstate/internal/config"
)

// frozen makes the limiter's clock stand still (no refill) until advanced.
func frozen(l *RateLimiter) func(time.Duration) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	l.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	return func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
}

func TestClientBucketsAreSeparateAndRefill(t *testing.T) {
	t.Parallel()
	l := NewRateLimiter(config.RateLimit{PerClient: 5, PerClientBurst: 10})
	advance := frozen(l)
	allowed := func(key string, n int) int {
		ok := 0
		for range n {
			if l.AllowClient(key) == nil {
				ok++
			}
		}
		return ok
	}
	require.Equal(t, 10, allowed("a", 30), "a burst passes, the rest is refused")
	require.Equal(t, 10, allowed("b", 30), "another client has its own bucket")
	err := l.AllowClient("a")
	var re *RateError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, ErrRateLimited)
	require.Equal(t, "client", re.Scope)
	require.Equal(t, 1, re.RetryAfterSeconds(), "one token comes back in 200 ms: retry after 1 s")
	advance(time.Second)
	require.Equal(t, 5, allowed("a", 30), "5 tokens a second")
}

func TestGlobalBucketIsShared(t *testing.T) {
	t.Parallel()
	l := NewRateLimiter(config.RateLimit{Global: 1, GlobalBurst: 3})
	frozen(l)
	ok := 0
	for range 10 {
		if l.AllowGlobal() == nil {
			ok++
		}
		require.NoError(t, l.AllowClient("x"), "no client limit configured")
	}
	require.Equal(t, 3, ok)
	var re *RateError
	require.ErrorAs(t, l.AllowGlobal(), &re)
	require.Equal(t, "global", re.Scope)
}

func TestIdleClientsAreForgotten(t *testing.T) {
	t.Parallel()
	l := NewRateLimiter(config.RateLimit{PerClient: 10, PerClientBurst: 10})
	advance := frozen(l)
	for i := range 100 {
		require.NoError(t, l.AllowClient(strconv.Itoa(i)))
	}
	require.Equal(t, 100, l.Clients())
	advance(2 * time.Second) // every bucket refilled
	require.NoError(t, l.AllowClient("new"))
	require.Equal(t, 1, l.Clients())

	l.maxClients = 10
	for i := range 50 {
		advance(time.Millisecond)
		require.NoError(t, l.AllowClient(strconv.Itoa(i)))
		require.LessOrEqual(t, l.Clients(), 10)
	}
}

// TestBurstAboveTheLimitGets429 sends a concurrent burst through a real
// HTTP server: exactly the bucket's size passes, every other request gets
// 429 in the API's error shape with Retry-After.
func TestBurstAboveTheLimitGets429(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	l := NewRateLimiter(config.RateLimit{PerClient: 2, PerClientBurst: 20, Global: 1000, GlobalBurst: 1000})
	frozen(l)
	r := gin.New()
	r.Use(Global(l), PerClient(l))
	r.GET("/x", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	const burst = 100
	codes := make(chan int, burst)
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			resp, err := srv.Client().Get(srv.URL + "/x")
			if err != nil {
				codes <- 0
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode == http.StatusTooManyRequests {
				var e auth.ErrorBody
				if json.Unmarshal(body, &e) != nil || e.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" ||
					resp.Header.Get("Content-Type") != "application/json" {
					codes <- -1
					return
				}
			}
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	require.Equal(t, map[int]int{200: 20, 429: 80}, count)
}

func TestClientKeyPrefersTheSubject(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	require.Equal(t, "ip:192.0.2.7", ClientKey(r))
	r = r.WithContext(auth.WithPrincipal(context.Background(), auth.Principal{Subject: "Mike"}))
	require.Equal(t, "subject:Mike", ClientKey(r))
}

func TestGateShedsPastItsBound(t *testing.T) {
	ctx := context.Background()
	g := NewGate(2, 0)
	r1, err := g.Enter(ctx)
	require.NoError(t, err)
	r2, err := g.Enter(ctx)
	require.NoError(t, err)
	_, err = g.Enter(ctx)
	require.True(t, errors.Is(err, ErrOverloaded), fmt.Sprint(err))
	require.Equal(t, 2, g.InFlight())
	r1()
	r3, err := g.Enter(ctx)
	require.NoError(t, err)
	r2()
	r3()
	require.Zero(t, g.InFlight())

	var none *Gate = NewGate(0, 0)
	release, err := none.Enter(ctx)
	require.NoError(t, err)
	release()
}

// Past the bound, calls wait in a queue of bounded length for a slot: one
// finding the queue full is refused at once, a queued one goes when a slot
// frees, and one whose turn would come too late for its deadline is
// refused before the deadline (never sent), not left to time out.
func TestGateQueuesUpToItsQueueLength(t *testing.T) {
	ctx := context.Background()
	g := NewGate(1, 1)
	r1, err := g.Enter(ctx)
	require.NoError(t, err)

	entered := make(chan func(), 1)
	go func() {
		release, err := g.Enter(ctx)
		if err != nil {
			panic(err)
		}
		entered <- release
	}()
	require.Eventually(t, func() bool { return g.Queued() == 1 }, 5*time.Second, time.Millisecond)
	_, err = g.Enter(ctx)
	require.ErrorIs(t, err, ErrOverloaded, "the queue is full")

	r1()
	select {
	case r2 := <-entered:
		require.Equal(t, 1, g.InFlight())
		require.Zero(t, g.Queued())
		r2()
	case <-time.After(5 * time.Second):
		t.Fatal("the queued call did not get the freed slot")
	}

	r3, err := g.Enter(ctx)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, queueMargin+50*time.Millisecond)
	defer cancel()
	_, err = g.Enter(short)
	require.ErrorIs(t, err, ErrOverloaded)
	require.NoError(t, short.Err(), "refused before the caller's deadline")
	r3()
}
