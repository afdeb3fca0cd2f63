package loadtest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/server"
	"github.com/artifactstate/artifactstate/workflows"
)

// memoryEntities is an in-memory server.Entities (like the router's own
// tests use), with faults to inject.
type memoryEntities struct {
	mu     sync.Mutex
	states map[entityid.Key]workflows.State
	err    error // returned by every call when set

	// loseRead: every setArtifactReadByUser of the first pair that gets one
	// is acknowledged but not applied.
	loseRead bool
	lostKey  *entityid.Key
	// gate, when set, holds every read until it is closed (or the request
	// ends).
	gate chan struct{}
}

func newMemoryEntities() *memoryEntities {
	return &memoryEntities{states: map[entityid.Key]workflows.State{}}
}

func (m *memoryEntities) Apply(_ context.Context, key entityid.Key, kind workflows.CommandKind) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if m.loseRead && kind == workflows.SetArtifactReadByUser {
		if m.lostKey == nil {
			m.lostKey = &key
		}
		if *m.lostKey == key {
			return nil // acknowledged, and lost
		}
	}
	s := m.states[key]
	if _, err := s.Apply(kind, time.Time{}); err != nil {
		return err
	}
	m.states[key] = s
	return nil
}

func (m *memoryEntities) State(ctx context.Context, key entityid.Key) (workflows.State, error) {
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return workflows.State{}, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.states[key], m.err
}

func (m *memoryEntities) IsArtifactReadByUser(ctx context.Context, key entityid.Key) (bool, error) {
	s, err := m.State(ctx, key)
	return s.ArtifactRead, err
}

func (m *memoryEntities) IsArtifactInUserFeed(ctx context.Context, key entityid.Key) (bool, error) {
	s, err := m.State(ctx, key)
	return s.ArtifactInUserFeed, err
}

func (m *memoryEntities) Ready(context.Context) error { return m.err }

func (m *memoryEntities) lost() entityid.Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lostKey == nil {
		return entityid.Key{}
	}
	return *m.lostKey
}

// memoryReadModel is a server.ReadModel projecting memoryEntities: its
// first `stale` reads answer a pair never projected (the projection lags),
// and a pair in `never` is never projected.
type memoryReadModel struct {
	entities *memoryEntities
	stale    atomic.Int64
	never    map[entityid.Key]bool
}

func (r *memoryReadModel) Get(ctx context.Context, userID string, artifactID int64) (readmodel.Row, bool, error) {
	key := entityid.Key{UserID: userID, ArtifactID: artifactID}
	if r.stale.Add(-1) >= 0 || r.never[key] {
		return readmodel.Row{UserID: userID, ArtifactID: artifactID}, false, nil
	}
	r.entities.mu.Lock()
	s := r.entities.states[key]
	r.entities.mu.Unlock()
	return readmodel.Row{UserID: userID, ArtifactID: artifactID, ArtifactRead: s.ArtifactRead,
		ArtifactInUserFeed: s.ArtifactInUserFeed, Version: s.Version, ChangedAt: time.Now()}, true, nil
}

func (r *memoryReadModel) Feed(context.Context, string, int, string) (readmodel.Page, error) {
	return readmodel.Page{}, nil
}

func (r *memoryReadModel) ReadArtifacts(context.Context, string, int, string) (readmodel.Page, error) {
	return readmodel.Page{}, nil
}

// newRouter is the real router on m (and rm, if not nil).
func newRouter(m *memoryEntities, rm *memoryReadModel) http.Handler {
	deps := server.Deps{Entities: m, Logger: slog.New(slog.DiscardHandler)}
	if rm != nil {
		deps.ReadModel = rm
	}
	return server.NewHandler(config.Default().API, deps)
}

// startAPI serves the real router on m (and rm, if not nil).
func startAPI(t *testing.T, m *memoryEntities, rm *memoryReadModel) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newRouter(m, rm))
	t.Cleanup(srv.Close)
	return srv
}

// newClient is a client of srv recording writes in a fresh ledger.
func newClient(t *testing.T, srv *httptest.Server, conns int) *Client {
	t.Helper()
	c, err := NewClient(srv.URL, ClientOptions{MaxConns: conns, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Ledger = NewLedger()
	t.Cleanup(c.Close)
	return c
}
