package limits

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrOverloaded: the bound on concurrent calls is reached and the queue
// before it is full, or a queued call's turn did not come in time.
var ErrOverloaded = errors.New("too many calls in flight")

// Gate bounds concurrent calls to a dependency. Up to the bound, calls go
// through at once; past it, up to queue more wait their turn in order,
// and a call finding the queue full fails at once, so an overloaded
// process answers "retry later" in microseconds instead of handing the
// dependency more work than it can do (a saturated Temporal times out
// its own internal calls and retries them, and every caller's latency
// grows past its deadline). A nil *Gate admits everything.
type Gate struct {
	slots  chan struct{}
	queued chan struct{} // nil: no queue
}

// NewGate admits up to n concurrent calls with up to queue more waiting;
// n <= 0 returns nil (no bound).
func NewGate(n, queue int) *Gate {
	if n <= 0 {
		return nil
	}
	g := &Gate{slots: make(chan struct{}, n)}
	if queue > 0 {
		g.queued = make(chan struct{}, queue)
	}
	return g
}

// queueMargin is left of a queued call's deadline for the call itself: a
// call whose turn would come later than that is refused (it was never
// sent, so the caller may retry it anywhere) rather than sent to time out.
const queueMargin = 250 * time.Millisecond

// Enter takes a slot, waiting in the queue when the bound is reached; call
// the returned function to give the slot back. The error wraps
// ErrOverloaded, or is ctx's when the caller gave up while queued.
func (g *Gate) Enter(ctx context.Context) (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	release = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	select {
	case g.queued <- struct{}{}: // a nil channel never admits
	default:
		return nil, fmt.Errorf("%w (bound %d, %d queued)", ErrOverloaded, cap(g.slots), cap(g.queued))
	}
	defer func() { <-g.queued }()
	var expired <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(deadline) - queueMargin)
		defer t.Stop()
		expired = t.C
	}
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-expired:
		return nil, fmt.Errorf("%w (bound %d): no turn within the deadline", ErrOverloaded, cap(g.slots))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// InFlight is the number of slots taken.
func (g *Gate) InFlight() int {
	if g == nil {
		return 0
	}
	return len(g.slots)
}

// Queued is the number of calls waiting for a slot.
func (g *Gate) Queued() int {
	if g == nil {
		return 0
	}
	return len(g.queued)
}
