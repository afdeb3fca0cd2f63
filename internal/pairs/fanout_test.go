package pairs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entitiestest"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/workflows"
)

// gatedEntities is the in-memory store whose writes wait for gate (or
// their context) and count how many wait at once.
type gatedEntities struct {
	*entitiestest.Entities
	gate           chan struct{}
	inFlight, most atomic.Int64
	applied        atomic.Int64
	// started, if set, gets a value as each write starts (buffered: it
	// must never block).
	started chan struct{}
}

func (g *gatedEntities) Apply(ctx context.Context, key entityid.Key, cmd entities.Command) (workflows.State, error) {
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	if g.started != nil {
		g.started <- struct{}{}
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return workflows.State{}, fmt.Errorf("%w: %v", entities.ErrTimeout, ctx.Err())
	}
	g.applied.Add(1)
	return g.Entities.Apply(ctx, key, cmd)
}

func users(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("follower-%04d", i)
	}
	return out
}

func fanOutKeys(t *testing.T, s *pairs.Service, artifactID int64, ids []string) []entityid.Key {
	t.Helper()
	keys, err := s.FanOutKeys(artifactID, ids)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

var add = entities.Command{Kind: workflows.SetArtifactAddedToUserFeed}

// No more than Concurrency items of one call are in flight, and every item
// is applied, in the order of the request.
func TestFanOutConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	e := &gatedEntities{Entities: entitiestest.New(), gate: gate, started: make(chan struct{}, 100)}
	s := pairs.New(e, nil, 5*time.Second, pairs.WithFanOut(pairs.FanOutLimits{MaxUsers: 100, Concurrency: 4, Timeout: 10 * time.Second}))
	keys := fanOutKeys(t, s, 7, users(100))
	done := make(chan []pairs.Result)
	go func() {
		results, err := s.FanOut(context.Background(), keys, add)
		if err != nil {
			t.Error(err)
		}
		done <- results
	}()
	for range 4 {
		<-e.started
	}
	select {
	case <-e.started:
		t.Fatal("a fifth item started while four were in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(gate)
	results := <-done
	if got := e.most.Load(); got != 4 {
		t.Fatalf("at most %d items in flight, want 4", got)
	}
	for i, r := range results {
		if r.Err != nil || r.State.Key != keys[i] || !r.State.ArtifactInUserFeed || r.State.Version != 1 {
			t.Fatalf("item %d: %+v, %v", i, r.State, r.Err)
		}
	}
}

// A retry of the whole call with the same key applies nothing twice and
// answers each item's first result; the same key with another command
// answers each item idempotency_key_reused.
func TestFanOutRetryWithTheSameKey(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	s := pairs.New(e, nil, 5*time.Second)
	keys := fanOutKeys(t, s, 1, users(50))
	keyed := entities.Command{Kind: workflows.SetArtifactAddedToUserFeed, IdempotencyKey: "publish-1"}
	first, err := s.FanOut(t.Context(), keys, keyed)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else removes it from one feed meanwhile.
	if _, err := s.Apply(t.Context(), keys[3], entities.Command{Kind: workflows.SetArtifactRemovedFromUserFeed}); err != nil {
		t.Fatal(err)
	}
	again, err := s.FanOut(t.Context(), keys, keyed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if again[i].Err != nil || again[i].State != first[i].State {
			t.Fatalf("item %d: the retry answered %+v, %v; the first result was %+v", i, again[i].State, again[i].Err, first[i].State)
		}
	}
	st, err := s.Get(t.Context(), keys[3], pairs.Strong)
	if err != nil || st.ArtifactInUserFeed || st.Version != 2 {
		t.Fatalf("the retry put the artifact back: %+v, %v", st, err)
	}

	reused, err := s.FanOut(t.Context(), keys, entities.Command{Kind: workflows.SetArtifactReadByUser, IdempotencyKey: "publish-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reused {
		if !errors.Is(r.Err, entities.ErrIdempotencyKeyReused) || r.State.Key != keys[i] {
			t.Fatalf("item %d with the key of another command: %+v, %v", i, r.State, r.Err)
		}
	}
}

// Items not started before the fan-out's deadline fail with
// ErrNotAttempted and are not applied; those in flight end with the
// deadline; the call itself still answers every item.
func TestFanOutDeadlineLeavesTheRestNotAttempted(t *testing.T) {
	t.Parallel()
	e := &gatedEntities{Entities: entitiestest.New(), gate: make(chan struct{})} // never opens
	s := pairs.New(e, nil, 5*time.Second, pairs.WithFanOut(pairs.FanOutLimits{MaxUsers: 10, Concurrency: 2, Timeout: 50 * time.Millisecond}))
	keys := fanOutKeys(t, s, 1, users(10))
	results, err := s.FanOut(context.Background(), keys, add)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		var onPair *pairs.Error
		if !errors.As(r.Err, &onPair) || onPair.Key != keys[i] || r.State.Key != keys[i] {
			t.Fatalf("item %d: %+v, %v", i, r.State, r.Err)
		}
		want := pairs.ErrNotAttempted
		if i < 2 {
			want = entities.ErrTimeout // in flight when the deadline passed
		}
		if !errors.Is(r.Err, want) {
			t.Fatalf("item %d: %v, want %v", i, r.Err, want)
		}
	}
	if e.Len() != 0 || e.applied.Load() != 0 {
		t.Fatalf("%d pairs written", e.Len())
	}
}

// A call whose context is done before its first item attempts nothing
// and fails as a whole.
func TestFanOutWithNothingAttemptedFails(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	s := pairs.New(e, nil, time.Second)
	keys := fanOutKeys(t, s, 1, users(3))
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := s.FanOut(expired, keys, add); !errors.Is(err, pairs.ErrNotAttempted) {
		t.Fatalf("past its deadline: %v", err)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.FanOut(gone, keys, add); !errors.Is(err, context.Canceled) {
		t.Fatalf("its caller gone: %v", err)
	}
	v := uint64(0)
	if _, err := s.FanOut(t.Context(), keys, entities.Command{Kind: workflows.SetArtifactAddedToUserFeed, IfVersion: &v}); err == nil {
		t.Fatal("a fan-out took an expected version")
	}
	if e.Len() != 0 {
		t.Fatalf("%d pairs written", e.Len())
	}
}

// A failure of one item (here the store refuses one pair) leaves the
// others applied.
func TestFanOutItemFailuresAreTheirOwn(t *testing.T) {
	t.Parallel()
	e := entitiestest.New()
	bad := entityid.Key{UserID: "follower-0002", ArtifactID: 1}
	s := pairs.New(&failingPair{Entities: e, key: bad}, nil, time.Second)
	results, err := s.FanOut(t.Context(), fanOutKeys(t, s, 1, users(5)), add)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if failed := r.Err != nil; failed != (r.State.Key == bad) {
			t.Fatalf("item %d: %+v, %v", i, r.State, r.Err)
		}
	}
	if e.Len() != 4 {
		t.Fatalf("%d pairs written, want 4", e.Len())
	}
}

type failingPair struct {
	*entitiestest.Entities
	key entityid.Key
}

func (f *failingPair) Apply(ctx context.Context, key entityid.Key, cmd entities.Command) (workflows.State, error) {
	if key == f.key {
		return workflows.State{}, fmt.Errorf("%w: overloaded", entities.ErrUnavailable)
	}
	return f.Entities.Apply(ctx, key, cmd)
}

// The list of users: 1 to MaxUsers, each valid, none twice; a problem
// names the entry.
func TestFanOutKeysValidation(t *testing.T) {
	t.Parallel()
	s := pairs.New(entitiestest.New(), nil, time.Second, pairs.WithFanOut(pairs.FanOutLimits{MaxUsers: 3, Concurrency: 1, Timeout: time.Second}))
	for _, tc := range []struct {
		ids    []string
		index  int
		reason string
	}{
		{nil, -1, "must hold 1 to 3 user IDs, got 0"},
		{users(4), -1, "must hold 1 to 3 user IDs, got 4"},
		{[]string{"a", "", "c"}, 1, "must not be empty"},
		{[]string{"a", "b\n"}, 1, "contains a non-printable character"},
		{[]string{strings.Repeat("u", entityid.MaxUserIDBytes+1)}, 0, "must be at most 256 bytes"},
		{[]string{"a", "b", "a"}, 2, "is user ID 0 again (each user may be named once)"},
	} {
		_, err := s.FanOutKeys(1, tc.ids)
		var le *pairs.UserListError
		if !errors.As(err, &le) || le.Index != tc.index || !strings.Contains(le.Reason, tc.reason) {
			t.Errorf("%q: %v; want entry %d: %s", tc.ids, err, tc.index, tc.reason)
		}
	}
	keys, err := s.FanOutKeys(-4, []string{"Mike", "Anna Łukasz"})
	if err != nil || len(keys) != 2 || keys[1] != (entityid.Key{UserID: "Anna Łukasz", ArtifactID: -4}) {
		t.Fatalf("%v, %v", keys, err)
	}
	if got := s.FanOutLimits(); got.MaxUsers != 3 {
		t.Fatalf("limits %+v", got)
	}
}
