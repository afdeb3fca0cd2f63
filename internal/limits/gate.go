package limits

import (
	"errors"
	"fmt"
)

// ErrOverloaded: the bound on concurrent calls is reached.
var ErrOverloaded = errors.New("too many calls in flight")

// Gate bounds concurrent calls: Enter fails at once when the bound is
// reached, so an overloaded process answers "retry later" in microseconds
// instead of queueing every caller until its timeout. A nil *Gate admits
// everything.
type Gate struct {
	slots chan struct{}
}

// NewGate admits up to n concurrent calls; n <= 0 returns nil (no bound).
func NewGate(n int) *Gate {
	if n <= 0 {
		return nil
	}
	return &Gate{slots: make(chan struct{}, n)}
}

// Enter takes a slot; call the returned function to give it back. The
// error wraps ErrOverloaded.
func (g *Gate) Enter() (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	default:
		return nil, fmt.Errorf("%w (bound %d)", ErrOverloaded, cap(g.slots))
	}
}

// InFlight is the number of slots taken.
func (g *Gate) InFlight() int {
	if g == nil {
		return 0
	}
	return len(g.slots)
}
