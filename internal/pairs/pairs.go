// Package pairs is the application service under both APIs: every
// operation the HTTP API (original and /v1) and the gRPC API offer on
// (user, artifact) pairs, whatever the transport. Writes and strong reads go
// through the entities (Temporal), eventual reads and lists through the
// Cassandra read model; batch reads run with bounded concurrency and
// per-pair errors, and so does a fan-out, one command on one artifact for
// many users (fanout.go); feed pages carry each item's state when asked.
// Every call is bounded by the request timeout (a fan-out by its own, each
// of its items by the request timeout), and a failure on one pair says which
// (Error). The transports only translate requests and answers
// (internal/apierror maps failures).
package pairs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/workflows"
)

// Limits of the batch and list calls.
const (
	// MaxBatch is the most pairs one batch read may ask for.
	MaxBatch = 100
	// BatchConcurrency is how many of one batch's reads run at once.
	BatchConcurrency = 16
	// DefaultPageSize and MaxPageSize bound list pages.
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// MaxPageSizeWithState bounds feed pages that carry each item's state.
	MaxPageSizeWithState = MaxBatch
)

// Consistency of a read.
type Consistency string

// The consistencies: strong asks the entity (reflects every acknowledged
// write); eventual reads the Cassandra read model (faster, may lag).
const (
	Strong   Consistency = "strong"
	Eventual Consistency = "eventual"
)

// ParseConsistency parses "strong", "eventual" or "" (strong).
func ParseConsistency(s string) (Consistency, error) {
	switch Consistency(s) {
	case "", Strong:
		return Strong, nil
	case Eventual:
		return Eventual, nil
	}
	return "", fmt.Errorf(`must be "strong" or "eventual", got %q`, s)
}

// ErrReadModelNotConfigured: the call needs the read model and none is
// configured.
var ErrReadModelNotConfigured = errors.New("this call is served from the Cassandra read model, and none is configured (set cassandra.hosts)")

// Entities is what the service needs from the entity store (entities.Client).
type Entities interface {
	Apply(ctx context.Context, key entityid.Key, cmd entities.Command) (workflows.State, error)
	State(ctx context.Context, key entityid.Key) (workflows.State, error)
	Ready(ctx context.Context) error
}

// ReadModel is what it reads from the Cassandra read model (readmodel.Store).
type ReadModel interface {
	Get(ctx context.Context, userID string, artifactID int64) (readmodel.Row, bool, error)
	GetMany(ctx context.Context, userID string, artifactIDs []int64) (map[int64]readmodel.Row, error)
	Feed(ctx context.Context, userID string, pageSize int, pageToken string) (readmodel.Page, error)
	ReadArtifacts(ctx context.Context, userID string, pageSize int, pageToken string) (readmodel.Page, error)
}

// State is one pair's state as the APIs answer it.
type State struct {
	Key                entityid.Key
	ArtifactRead       bool
	ArtifactInUserFeed bool
	Version            uint64
	Consistency        Consistency
	// ChangedAt (eventual reads): when the projected state last changed.
	ChangedAt time.Time
	// When each flag last changed (strong reads; zero when unknown).
	ArtifactReadChangedAt       time.Time
	ArtifactInUserFeedChangedAt time.Time
}

// Result is one pair of a batch: its state or why it could not be read.
type Result struct {
	State State
	Err   error
}

// Error is a failure of an operation on one pair: the transports log the
// pair, and answer a version mismatch with its current state.
type Error struct {
	Key entityid.Key
	Err error
}

func (e *Error) Error() string { return e.Key.String() + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// onPair wraps a failure on pair key (nil stays nil).
func onPair(key entityid.Key, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Key: key, Err: err}
}

// Service serves pairs. ReadModel may be nil (no read model configured).
type Service struct {
	entities  Entities
	readModel ReadModel
	timeout   time.Duration
	fanOut    FanOutLimits
}

// New returns a Service; rm nil means no read model. requestTimeout bounds
// each call (api.requestTimeout; the caller's own deadline still applies
// when shorter); 0 leaves the caller's alone. The fan-out's limits are the
// configuration's defaults unless an option sets them (WithFanOut).
func New(e Entities, rm ReadModel, requestTimeout time.Duration, opts ...Option) *Service {
	s := &Service{entities: e, readModel: rm, timeout: requestTimeout, fanOut: FanOutLimitsOf(config.Default().API)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// bound applies the request timeout to one call.
func (s *Service) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// Ready checks that the entity store (Temporal) answers.
func (s *Service) Ready(ctx context.Context) error { return s.entities.Ready(ctx) }

// Apply applies the command and returns the state right after it.
func (s *Service) Apply(ctx context.Context, key entityid.Key, cmd entities.Command) (State, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	st, err := s.entities.Apply(ctx, key, cmd)
	return EntityState(key, st), onPair(key, err)
}

// Get reads one pair.
func (s *Service) Get(ctx context.Context, key entityid.Key, c Consistency) (State, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.get(ctx, key, c)
}

func (s *Service) get(ctx context.Context, key entityid.Key, c Consistency) (State, error) {
	if c == Eventual {
		if s.readModel == nil {
			return State{Key: key}, onPair(key, ErrReadModelNotConfigured)
		}
		row, _, err := s.readModel.Get(ctx, key.UserID, key.ArtifactID)
		if err != nil {
			return State{Key: key}, onPair(key, err)
		}
		return eventual(key, row), nil
	}
	st, err := s.entities.State(ctx, key)
	return EntityState(key, st), onPair(key, err)
}

// BatchGet reads up to MaxBatch pairs, BatchConcurrency at a time; the
// results are in the order of keys, each with its state (its Key set even
// when it failed) or its error.
func (s *Service) BatchGet(ctx context.Context, keys []entityid.Key, c Consistency) ([]Result, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.batchGet(ctx, keys, c)
}

func (s *Service) batchGet(ctx context.Context, keys []entityid.Key, c Consistency) ([]Result, error) {
	if len(keys) > MaxBatch {
		return nil, fmt.Errorf("at most %d pairs per batch, got %d", MaxBatch, len(keys))
	}
	if c == Eventual && s.readModel == nil {
		return nil, ErrReadModelNotConfigured
	}
	out := make([]Result, len(keys))
	sem := make(chan struct{}, BatchConcurrency)
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			st, err := s.get(ctx, key, c)
			out[i] = Result{State: st, Err: err}
		}()
	}
	wg.Wait()
	return out, nil
}

// FeedPage is one page of a user's feed; States is set when asked for, in
// the order of ArtifactIDs.
type FeedPage struct {
	ArtifactIDs []int64
	Next        string
	States      []Result
}

// Feed lists a page of the user's feed (from the read model); withState
// adds each item's state, read with consistency c.
func (s *Service) Feed(ctx context.Context, userID string, pageSize int, pageToken string, withState bool, c Consistency) (FeedPage, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if s.readModel == nil {
		return FeedPage{}, ErrReadModelNotConfigured
	}
	page, err := s.readModel.Feed(ctx, userID, pageSize, pageToken)
	if err != nil {
		return FeedPage{}, err
	}
	out := FeedPage{ArtifactIDs: page.ArtifactIDs, Next: page.Next}
	if !withState || len(page.ArtifactIDs) == 0 {
		return out, nil
	}
	keys := make([]entityid.Key, len(page.ArtifactIDs))
	for i, id := range page.ArtifactIDs {
		keys[i] = entityid.Key{UserID: userID, ArtifactID: id}
	}
	if c == Strong {
		out.States, err = s.batchGet(ctx, keys, Strong)
		return out, err
	}
	rows, err := s.readModel.GetMany(ctx, userID, page.ArtifactIDs)
	if err != nil {
		return FeedPage{}, err
	}
	out.States = make([]Result, len(keys))
	for i, key := range keys {
		out.States[i] = Result{State: eventual(key, rows[key.ArtifactID])}
	}
	return out, nil
}

// ReadArtifacts lists a page of what the user has read (from the read
// model).
func (s *Service) ReadArtifacts(ctx context.Context, userID string, pageSize int, pageToken string) (readmodel.Page, error) {
	if s.readModel == nil {
		return readmodel.Page{}, ErrReadModelNotConfigured
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.readModel.ReadArtifacts(ctx, userID, pageSize, pageToken)
}

// EntityState is a state an entity answered (strong), as the APIs answer
// it.
func EntityState(key entityid.Key, st workflows.State) State {
	return State{Key: key, ArtifactRead: st.ArtifactRead, ArtifactInUserFeed: st.ArtifactInUserFeed, Version: st.Version,
		Consistency: Strong, ArtifactReadChangedAt: st.ArtifactReadChangedAt, ArtifactInUserFeedChangedAt: st.ArtifactInUserFeedChangedAt}
}

func eventual(key entityid.Key, row readmodel.Row) State {
	return State{Key: key, ArtifactRead: row.ArtifactRead, ArtifactInUserFeed: row.ArtifactInUserFeed, Version: row.Version,
		Consistency: Eventual, ChangedAt: row.ChangedAt}
}
