package entities

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// The coalescer must stay linearizable: every caller's answer comes from a
// query sent after the caller began. The fake entity's version grows all
// the time; each query answers the version it saw when it was sent.
func TestCoalescedReadsAreNeverOlderThanTheCall(t *testing.T) {
	t.Parallel()
	var version atomic.Uint64
	var queries atomic.Int64
	c := newCoalescer(time.Minute, func(context.Context, entityid.Key) (workflows.State, error) {
		queries.Add(1)
		seen := version.Load()
		time.Sleep(2 * time.Millisecond) // the query's round trip
		return workflows.State{Version: seen}, nil
	})
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				version.Add(1)
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	defer close(stop)

	key := entityid.Key{UserID: "hot", ArtifactID: 1}
	var wg sync.WaitGroup
	var calls atomic.Int64
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				before := version.Load()
				s, err := c.read(context.Background(), key)
				calls.Add(1)
				if err != nil {
					errs <- err
					return
				}
				if s.Version < before {
					errs <- errors.New("a read answered a state older than the read")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d reads, %d queries", calls.Load(), queries.Load())
	require.Less(t, queries.Load(), calls.Load()/4, "concurrent reads of one pair share queries")
}

// To see that test fail: join the round in flight as well.
func TestJoiningASentQueryWouldBeStale(t *testing.T) {
	t.Parallel()
	// A query sent before the caller began answers an older state: what
	// the coalescer must never hand out (it joins only unsent rounds).
	var version atomic.Uint64
	release := make(chan struct{})
	c := newCoalescer(time.Minute, func(context.Context, entityid.Key) (workflows.State, error) {
		seen := version.Load()
		<-release
		return workflows.State{Version: seen}, nil
	})
	key := entityid.Key{UserID: "u", ArtifactID: 1}
	first := make(chan workflows.State)
	go func() {
		s, _ := c.read(context.Background(), key)
		first <- s
	}()
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.pairs[key] != nil && c.pairs[key].inFlight != nil
	})
	version.Store(7) // a write lands after the first query was sent
	second := make(chan workflows.State)
	go func() {
		s, _ := c.read(context.Background(), key)
		second <- s
	}()
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.pairs[key].next != nil })
	close(release)
	require.Equal(t, uint64(0), (<-first).Version)
	require.Equal(t, uint64(7), (<-second).Version, "the second caller waited for a query sent after it began")
}

// A caller that gives up does not fail the others reading with it; an
// error reaches every caller of its round.
func TestCoalescedCallersAreIndependent(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	fail := errors.New("boom")
	c := newCoalescer(time.Minute, func(context.Context, entityid.Key) (workflows.State, error) {
		<-release
		return workflows.State{}, fail
	})
	key := entityid.Key{UserID: "u", ArtifactID: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := c.read(ctx, key)
	require.ErrorIs(t, err, ErrTimeout, "the caller's own deadline")
	done := make(chan error)
	go func() {
		_, err := c.read(context.Background(), key)
		done <- err
	}()
	close(release)
	require.ErrorIs(t, <-done, fail)
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.pairs) == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
