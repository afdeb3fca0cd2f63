package pairs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
)

// FanOutLimits bound the fan-out call (api.maxFanoutUsers,
// api.fanoutConcurrency, api.fanoutTimeout).
type FanOutLimits struct {
	// MaxUsers is the most users one call may name.
	MaxUsers int
	// Concurrency is how many of one call's items run at once.
	Concurrency int
	// Timeout bounds the whole call; each item is still bounded by the
	// request timeout.
	Timeout time.Duration
}

// FanOutLimitsOf are the limits cfg sets.
func FanOutLimitsOf(cfg config.API) FanOutLimits {
	return FanOutLimits{MaxUsers: cfg.MaxFanoutUsers, Concurrency: cfg.FanoutConcurrency, Timeout: cfg.FanoutTimeout}
}

// Option tunes a Service.
type Option func(*Service)

// WithFanOut sets the fan-out's limits (default: the configuration's
// defaults).
func WithFanOut(l FanOutLimits) Option {
	return func(s *Service) { s.fanOut = l }
}

// ErrNotAttempted: the fan-out's deadline passed before this item was
// started; nothing was applied to its pair (a timeout: retry it).
var ErrNotAttempted = errors.New("the fan-out's deadline (api.fanoutTimeout) passed before this item was attempted; it was not applied")

// UserListError is a fan-out's list of user IDs at fault: the list itself
// (Index -1: its length) or its entry Index.
type UserListError struct {
	Index  int
	Reason string
}

func (e *UserListError) Error() string {
	if e.Index < 0 {
		return "user IDs: " + e.Reason
	}
	return "user ID " + strconv.Itoa(e.Index) + ": " + e.Reason
}

// FanOutLimits are the service's fan-out limits.
func (s *Service) FanOutLimits() FanOutLimits { return s.fanOut }

// FanOutKeys validates a fan-out's users and returns the pairs it names on
// artifactID, in order: 1 to MaxUsers user IDs, each valid as everywhere
// else (entityid), none twice. A problem is a *UserListError.
func (s *Service) FanOutKeys(artifactID int64, userIDs []string) ([]entityid.Key, error) {
	if n := len(userIDs); n == 0 || n > s.fanOut.MaxUsers {
		return nil, &UserListError{Index: -1, Reason: fmt.Sprintf("must hold 1 to %d user IDs, got %d", s.fanOut.MaxUsers, n)}
	}
	keys := make([]entityid.Key, len(userIDs))
	first := make(map[string]int, len(userIDs))
	for i, id := range userIDs {
		k, err := entityid.New(id, artifactID)
		var fe *entityid.FieldError
		if errors.As(err, &fe) {
			return nil, &UserListError{Index: i, Reason: fe.Reason}
		}
		if err != nil {
			return nil, err
		}
		if j, seen := first[id]; seen {
			return nil, &UserListError{Index: i, Reason: fmt.Sprintf("is user ID %d again (each user may be named once)", j)}
		}
		first[id] = i
		keys[i] = k
	}
	return keys, nil
}

// FanOut applies cmd to every pair of keys (from FanOutKeys) and returns
// each pair's result, in the order of keys: the state right after the
// command, or why it failed. Items run Concurrency at a time, the whole
// call within the fan-out timeout and each item within the request timeout;
// the entities' bound on Temporal calls in flight still applies (past it an
// item fails with entities.ErrUnavailable). A failed item never fails the
// others: once the deadline passes, items not started fail with
// ErrNotAttempted. The call itself fails only when no item could be
// attempted (its context was done before the first one: ErrNotAttempted or
// context.Canceled), or when keys or cmd are not a fan-out's.
//
// With cmd.IdempotencyKey, each item is sent with that key: the entity
// remembers keys per pair, so a retry of the call applies nothing twice and
// answers each item's first result, and a key used before on a pair for
// another command answers that item entities.ErrIdempotencyKeyReused.
func (s *Service) FanOut(ctx context.Context, keys []entityid.Key, cmd entities.Command) ([]Result, error) {
	if n := len(keys); n == 0 || n > s.fanOut.MaxUsers {
		return nil, fmt.Errorf("a fan-out names 1 to %d pairs, got %d", s.fanOut.MaxUsers, n)
	}
	if cmd.IfVersion != nil {
		return nil, errors.New("a fan-out takes no expected version")
	}
	ctx, cancel := context.WithTimeout(ctx, s.fanOut.Timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return nil, notAttempted(err)
	}
	out := make([]Result, len(keys))
	sem := make(chan struct{}, max(s.fanOut.Concurrency, 1))
	var wg sync.WaitGroup
	for i, key := range keys {
		if !acquire(ctx, sem) {
			for j := i; j < len(keys); j++ {
				out[j] = Result{State: State{Key: keys[j]}, Err: onPair(keys[j], notAttempted(ctx.Err()))}
			}
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			st, err := s.Apply(ctx, key, cmd)
			out[i] = Result{State: st, Err: err}
		})
	}
	wg.Wait()
	return out, nil
}

// acquire takes a slot of sem unless ctx is done first (or already).
func acquire(ctx context.Context, sem chan struct{}) bool {
	select {
	case <-ctx.Done():
		return false
	case sem <- struct{}{}:
		if ctx.Err() != nil { // both were ready: the deadline wins
			<-sem
			return false
		}
		return true
	}
}

// notAttempted is the failure of an item never started because ctx ended:
// its deadline passed (ErrNotAttempted), or its caller went away.
func notAttempted(ctxErr error) error {
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		return ErrNotAttempted
	}
	return ctxErr
}
