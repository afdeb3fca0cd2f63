// Package entitiestest is a test double of the entity store: an in-memory
// pairs.Entities, with hooks to inject faults. It serves the tests of the
// APIs and of their clients (server/, internal/grpcapi, internal/loadtest),
// which need no Temporal; the real store is tested end to end in
// internal/integration. Only tests import it.
package entitiestest

import (
	"context"
	"sync"
	"time"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// Entities keeps every pair's state in a map, applying commands with the
// entity workflow's own State.Apply.
type Entities struct {
	mu     sync.Mutex
	states map[entityid.Key]workflows.State
	keys   map[entityid.Key]workflows.IdempotencyRecords
	err    error
	drop   func(entityid.Key, workflows.CommandKind) bool
	gate   chan struct{}
}

// New returns an empty store.
func New() *Entities {
	return &Entities{states: map[entityid.Key]workflows.State{}, keys: map[entityid.Key]workflows.IdempotencyRecords{}}
}

// FailWith makes every call fail with err (nil: work again).
func (m *Entities) FailWith(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

// DropWrites acknowledges, without applying, every write for which drop
// returns true: a store that loses acknowledged writes.
func (m *Entities) DropWrites(drop func(entityid.Key, workflows.CommandKind) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drop = drop
}

// HoldReads makes every read wait until gate is closed (or its request
// ends): a slow store.
func (m *Entities) HoldReads(gate chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gate = gate
}

// Len is the number of pairs written.
func (m *Entities) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.states)
}

// Apply implements pairs.Entities, with the entity's idempotency keys and
// conditional writes.
func (m *Entities) Apply(_ context.Context, key entityid.Key, cmd entities.Command) (workflows.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return workflows.State{}, m.err
	}
	s := m.states[key]
	now := time.Now()
	keys := m.keys[key]
	if rec, ok := keys.Lookup(cmd.IdempotencyKey, now); ok {
		if rec.Kind != cmd.Kind {
			return s, entities.ErrIdempotencyKeyReused
		}
		return rec.Result.State, nil
	}
	if cmd.IfVersion != nil && *cmd.IfVersion != s.Version {
		return s, &entities.VersionMismatchError{Current: s}
	}
	if m.drop != nil && m.drop(key, cmd.Kind) {
		return s, nil
	}
	if _, err := s.Apply(cmd.Kind, now); err != nil {
		return s, err
	}
	m.states[key] = s
	keys.Remember(workflows.IdempotencyRecord{Key: cmd.IdempotencyKey, Kind: cmd.Kind, Result: workflows.CommandResult{State: s}, At: now})
	m.keys[key] = keys
	return s, nil
}

// State implements pairs.Entities.
func (m *Entities) State(ctx context.Context, key entityid.Key) (workflows.State, error) {
	m.mu.Lock()
	gate := m.gate
	m.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return workflows.State{}, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.states[key], m.err
}

// Ready implements pairs.Entities.
func (m *Entities) Ready(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}
