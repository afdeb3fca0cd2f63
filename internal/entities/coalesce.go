package entities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// coalescer shares strong reads of one pair among the callers of one
// process, without giving up linearizability: a caller only joins a query
// that has not been sent yet, so the answer it gets was read after it asked
// (and before it returns). Per pair, at most one query is in flight and one
// is gathering callers; a hot pair read by a hundred callers costs its
// entity a query at a time instead of a hundred.
type coalescer struct {
	// query reads the pair; it runs with a context of its own (bounded by
	// timeout), so one caller giving up does not fail the others.
	query   func(ctx context.Context, key entityid.Key) (workflows.State, error)
	timeout time.Duration

	mu    sync.Mutex
	pairs map[entityid.Key]*pairReads
}

// pairReads is one pair's reads: the query in flight, if any, and the next
// one, gathering callers until the one in flight returns.
type pairReads struct {
	inFlight, next *round
}

// round is one query and the callers waiting for it.
type round struct {
	done  chan struct{}
	state workflows.State
	err   error
}

func newCoalescer(timeout time.Duration, query func(ctx context.Context, key entityid.Key) (workflows.State, error)) *coalescer {
	return &coalescer{query: query, timeout: timeout, pairs: map[entityid.Key]*pairReads{}}
}

// read returns the pair's state as a query sent after this call began
// answered it.
func (c *coalescer) read(ctx context.Context, key entityid.Key) (workflows.State, error) {
	c.mu.Lock()
	p := c.pairs[key]
	if p == nil {
		p = &pairReads{}
		c.pairs[key] = p
	}
	r := p.next
	if r == nil {
		r = &round{done: make(chan struct{})}
		if p.inFlight == nil {
			p.inFlight = r
			go c.send(key, p, r)
		} else {
			p.next = r // sent when the query in flight returns
		}
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		return r.state, r.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return workflows.State{}, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
		}
		return workflows.State{}, ctx.Err()
	}
}

// send runs the round's query, then the next round's, until none gathers.
func (c *coalescer) send(key entityid.Key, p *pairReads, r *round) {
	for r != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		r.state, r.err = c.query(ctx, key)
		cancel()
		close(r.done)
		c.mu.Lock()
		r, p.inFlight, p.next = p.next, p.next, nil
		if r == nil {
			delete(c.pairs, key)
		}
		c.mu.Unlock()
	}
}
