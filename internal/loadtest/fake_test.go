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
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entitiestest"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/pairs"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/server"
	"github.com/artifactstate/artifactstate/workflows"
)

// memoryEntities is the in-memory entity store with faults of ours:
//   - loseRead: every setArtifactReadByUser of the first pair that gets one
//     is acknowledged but not applied;
//   - writeErr, readErr: writes or reads of a pair fail with the error;
//   - notInFeed: reads of a pair answer it is not in the feed (a stale read);
//   - forgetRead: reads answer read=false (a replica that never saw a
//     setArtifactReadByUser).
type memoryEntities struct {
	*entitiestest.Entities
	mu         sync.Mutex
	loseRead   bool
	lostKey    *entityid.Key
	writeErr   map[entityid.Key]error
	readErr    map[entityid.Key]error
	notInFeed  map[entityid.Key]bool
	forgetRead bool
}

func (m *memoryEntities) Apply(ctx context.Context, key entityid.Key, cmd entities.Command) (workflows.State, error) {
	m.mu.Lock()
	err := m.writeErr[key]
	m.mu.Unlock()
	if err != nil {
		return workflows.State{}, err
	}
	return m.Entities.Apply(ctx, key, cmd)
}

func (m *memoryEntities) State(ctx context.Context, key entityid.Key) (workflows.State, error) {
	m.mu.Lock()
	err, forget, stale := m.readErr[key], m.forgetRead, m.notInFeed[key]
	m.mu.Unlock()
	if err != nil {
		return workflows.State{}, err
	}
	s, err := m.Entities.State(ctx, key)
	if forget {
		s.ArtifactRead = false
	}
	if stale {
		s.ArtifactInUserFeed = false
	}
	return s, err
}

func newMemoryEntities() *memoryEntities {
	m := &memoryEntities{Entities: entitiestest.New()}
	m.DropWrites(func(key entityid.Key, kind workflows.CommandKind) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.loseRead || kind != workflows.SetArtifactReadByUser {
			return false
		}
		if m.lostKey == nil {
			m.lostKey = &key
		}
		return *m.lostKey == key
	})
	return m
}

func (m *memoryEntities) lost() entityid.Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lostKey == nil {
		return entityid.Key{}
	}
	return *m.lostKey
}

// memoryReadModel is a pairs.ReadModel projecting memoryEntities: its
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
	s, err := r.entities.State(ctx, key)
	if err != nil {
		return readmodel.Row{}, false, err
	}
	return readmodel.Row{UserID: userID, ArtifactID: artifactID, ArtifactRead: s.ArtifactRead,
		ArtifactInUserFeed: s.ArtifactInUserFeed, Version: s.Version, ChangedAt: time.Now()}, true, nil
}

func (r *memoryReadModel) GetMany(ctx context.Context, userID string, artifactIDs []int64) (map[int64]readmodel.Row, error) {
	out := map[int64]readmodel.Row{}
	for _, id := range artifactIDs {
		row, ok, err := r.Get(ctx, userID, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out[id] = row
		}
	}
	return out, nil
}

func (r *memoryReadModel) Feed(context.Context, string, int, string) (readmodel.Page, error) {
	return readmodel.Page{}, nil
}

func (r *memoryReadModel) ReadArtifacts(context.Context, string, int, string) (readmodel.Page, error) {
	return readmodel.Page{}, nil
}

// service is the application service both APIs serve, on m (and rm, if
// not nil).
func service(m *memoryEntities, rm *memoryReadModel) *pairs.Service {
	if rm == nil { // a nil *memoryReadModel must not become a non-nil interface
		return pairs.New(m, nil, config.Default().API.RequestTimeout)
	}
	return pairs.New(m, rm, config.Default().API.RequestTimeout)
}

// newRouter is the real router on m (and rm, if not nil).
func newRouter(m *memoryEntities, rm *memoryReadModel) http.Handler {
	return server.NewHandler(config.Default().API, server.Deps{Pairs: service(m, rm), Logger: slog.New(slog.DiscardHandler)})
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
