package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/localcassandra"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/workflows"
)

var allCommands = []workflows.CommandKind{workflows.SetArtifactReadByUser, workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed}

// model is what the read model must converge to.
type model map[string]map[int64]*workflows.State

func (m model) apply(user string, artifact int64, kind workflows.CommandKind) {
	if m[user] == nil {
		m[user] = map[int64]*workflows.State{}
	}
	if m[user][artifact] == nil {
		m[user][artifact] = &workflows.State{}
	}
	applyModel(m[user][artifact], kind)
}

// mismatch compares the read model with m through the API: every pair's
// eventual read, and every user's feed and read lists.
func (s *stack) mismatch(t testing.TB, m model) error {
	for user, artifacts := range m {
		var feed, read []int64
		for id, st := range artifacts {
			var got pairJSON
			if err := s.getJSON(t, fmt.Sprintf("/v1/users/%s/artifacts/%d?consistency=eventual", url.PathEscape(user), id), &got); err != nil {
				return err
			}
			if got.ArtifactRead != st.ArtifactRead || got.ArtifactInUserFeed != st.ArtifactInUserFeed {
				return fmt.Errorf("pair (%s, %d): read model %+v, want read=%t inFeed=%t", user, id, got, st.ArtifactRead, st.ArtifactInUserFeed)
			}
			if st.ArtifactInUserFeed {
				feed = append(feed, id)
			}
			if st.ArtifactRead {
				read = append(read, id)
			}
		}
		slices.Sort(feed)
		slices.Sort(read)
		for _, l := range []struct {
			path string
			want []int64
		}{{"feed", feed}, {"read", read}} {
			got, err := s.listAll(t, user, l.path, 7)
			if err != nil {
				return err
			}
			if !slices.Equal(got, l.want) && (len(got) > 0 || len(l.want) > 0) {
				return fmt.Errorf("%s of %s: read model %v, want %v", l.path, user, got, l.want)
			}
		}
	}
	return nil
}

type pairJSON struct {
	ArtifactRead       bool   `json:"artifactRead"`
	ArtifactInUserFeed bool   `json:"artifactInUserFeed"`
	Version            uint64 `json:"version"`
	Consistency        string `json:"consistency"`
}

type listJSON struct {
	UserID        string  `json:"userId"`
	ArtifactIDs   []int64 `json:"artifactIds"`
	NextPageToken string  `json:"nextPageToken"`
}

func (s *stack) getJSON(t testing.TB, path string, v any) error {
	r := do(t, http.MethodGet, s.api.URL+path, "")
	if r.status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, r.status, r.body)
	}
	return json.Unmarshal([]byte(r.body), v)
}

// listAll follows the pages of a list endpoint.
func (s *stack) listAll(t testing.TB, user, list string, pageSize int) ([]int64, error) {
	var all []int64
	token := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			return nil, fmt.Errorf("%s of %s: too many pages", list, user)
		}
		var page listJSON
		q := url.Values{"pageSize": {fmt.Sprint(pageSize)}}
		if token != "" {
			q.Set("pageToken", token)
		}
		if err := s.getJSON(t, "/v1/users/"+url.PathEscape(user)+"/"+list+"?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		if page.UserID != user {
			return nil, fmt.Errorf("list answered for user %q, want %q", page.UserID, user)
		}
		all = append(all, page.ArtifactIDs...)
		if page.NextPageToken == "" {
			return all, nil
		}
		token = page.NextPageToken
	}
}

// Random commands on many pairs, from concurrent writers: the read model
// ends exactly where the entities are.
func TestReadModelConvergesToTheEntities(t *testing.T) {
	t.Parallel()
	s := startStackWithReadModel(t, testenv.CassandraHosts(t), nil)
	users := []string{"Mike", "Ann/Lee", "山田", "zoë"}
	m := model{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			user := users[w] // one writer per user keeps the model's order exact
			for range 60 {
				artifact := int64(rng.IntN(15))
				kind := allCommands[rng.IntN(len(allCommands))]
				if r := s.post(t, "/artifactState/"+string(kind), pairBody(artifact, user)); r.status != http.StatusOK {
					t.Errorf("%s %s %d: %d %s", kind, user, artifact, r.status, r.body)
					return
				}
				mu.Lock()
				m.apply(user, artifact, kind)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	testenv.Eventually(t, time.Minute, func(context.Context) error { return s.mismatch(t, m) })
	t.Logf("projection lag: %s", s.lags.summary())
}

// Projections that arrive late, twice, or out of order never move a row back.
func TestOlderProjectionsCannotMoveRowsBack(t *testing.T) {
	t.Parallel()
	_, store := testenv.ReadModel(t, testenv.CassandraHosts(t))
	ctx := context.Background()
	row := func(v uint64, read, inFeed bool) readmodel.Row {
		return readmodel.Row{UserID: "Mike", ArtifactID: 1, ArtifactRead: read, ArtifactInUserFeed: inFeed, Version: v,
			ChangedAt: time.UnixMilli(int64(v) * 1000).UTC()}
	}
	// project writes like the projection of history versions 1 and 2: the
	// version is the timestamp, a false flag is always deleted.
	project := func(r readmodel.Row) error {
		return store.Project(ctx, readmodel.Projection{Row: r, Timestamp: int64(r.Version),
			RemoveFromFeed: !r.ArtifactInUserFeed, RemoveFromRead: !r.ArtifactRead})
	}
	check := func(wantVersion uint64, read, inFeed bool) {
		t.Helper()
		got, ok, err := store.Get(ctx, "Mike", 1)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, row(wantVersion, read, inFeed), got)
		feed, err := store.Feed(ctx, "Mike", 10, "")
		require.NoError(t, err)
		require.Equal(t, inFeed, slices.Contains(feed.ArtifactIDs, 1), "feed %v", feed.ArtifactIDs)
		reads, err := store.ReadArtifacts(ctx, "Mike", 10, "")
		require.NoError(t, err)
		require.Equal(t, read, slices.Contains(reads.ArtifactIDs, 1), "read %v", reads.ArtifactIDs)
	}
	require.NoError(t, project(row(3, true, true)))
	require.NoError(t, project(row(2, false, false))) // late
	check(3, true, true)
	require.NoError(t, project(row(4, true, false)))
	require.NoError(t, project(row(4, true, false))) // retried
	require.NoError(t, project(row(3, true, true)))  // late again: must not re-add to the feed
	check(4, true, false)
	require.NoError(t, project(row(5, true, true)))
	check(5, true, true)
	require.NoError(t, project(row(1, false, false)))
	check(5, true, true)
}

func TestListsPaginate(t *testing.T) {
	t.Parallel()
	s := startStackWithReadModel(t, testenv.CassandraHosts(t), nil)
	ctx := context.Background()
	var want []int64
	for i := range 250 {
		id := int64(i*3 - 100)
		want = append(want, id)
		require.NoError(t, s.store.Project(ctx, readmodel.Projection{Timestamp: 1,
			Row: readmodel.Row{UserID: "many", ArtifactID: id, ArtifactInUserFeed: true, Version: 1, ChangedAt: time.Now()}}))
	}
	for _, size := range []int{1, 100, 249, 250, 1000} {
		got, err := s.listAll(t, "many", "feed", size)
		require.NoError(t, err)
		require.Equal(t, want, got, "page size %d", size)
	}
	var first listJSON
	require.NoError(t, s.getJSON(t, "/v1/users/many/feed", &first))
	require.Len(t, first.ArtifactIDs, 100, "the default page size")
	require.NotEmpty(t, first.NextPageToken)

	for _, bad := range []string{"pageSize=0", "pageSize=1001", "pageSize=x", "pageToken=%25%25", "pageToken=AAAA"} {
		r := do(t, http.MethodGet, s.api.URL+"/v1/users/many/feed?"+bad, "")
		require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", bad, r.body)
		require.Contains(t, r.body, `"code":"invalid_argument"`, bad)
	}
	empty, err := s.listAll(t, "nobody", "read", 10)
	require.NoError(t, err)
	require.Empty(t, empty)
}

// With Cassandra down, writes keep succeeding and strong reads stay right;
// when the node is back on its address, the same running API and worker (no
// restart, the default Cassandra configuration) reconnect by themselves: the
// eventual reads answer again and the read model catches up with every
// acknowledged write. The node is the test's own (localcassandra on ports it
// picks itself, under t.TempDir()) and comes back through a plain restart of
// its run dir, as `scripts/cassandra stop` and `start` do.
func TestCassandraOutageLosesNothing(t *testing.T) {
	t.Parallel()
	testenv.CassandraHosts(t) // honours the opt-out
	ctx := context.Background()
	opts := localcassandra.Options{RunDir: filepath.Join(t.TempDir(), "cassandra"), Logger: testenv.Logger()}
	node, err := localcassandra.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := localcassandra.StopDir(context.Background(), opts.RunDir); err != nil && !errors.Is(err, localcassandra.ErrNotRunning) {
			t.Logf("stop Cassandra: %v", err)
		}
	})
	s := startStackWithDefaultReadModel(t, []string{node.CQLAddress()})
	m := model{}
	write := func(user string, artifact int64, kind workflows.CommandKind) {
		t.Helper()
		r := s.post(t, "/artifactState/"+string(kind), pairBody(artifact, user))
		require.Equal(t, http.StatusOK, r.status, r.body)
		m.apply(user, artifact, kind)
	}
	write("Mike", 1, workflows.SetArtifactAddedToUserFeed)
	write("Mike", 2, workflows.SetArtifactReadByUser)
	testenv.Eventually(t, time.Minute, func(context.Context) error { return s.mismatch(t, m) })

	require.NoError(t, node.Stop(ctx))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 30 {
		write("Mike", int64(rng.IntN(6)), allCommands[rng.IntN(len(allCommands))])
	}
	write("Mike", 1, workflows.SetArtifactRemovedFromUserFeed)
	// Strong reads do not need Cassandra.
	require.Equal(t, `{"answer":false,"artifactId":1,"userId":"Mike"}`, s.get(t, "/artifactState/isArtifactInUserFeed", 1, "Mike").body)
	r := do(t, http.MethodGet, s.api.URL+"/v1/users/Mike/feed", "")
	require.Contains(t, []int{http.StatusServiceUnavailable, http.StatusGatewayTimeout}, r.status, r.body)

	restarted, err := localcassandra.Start(ctx, opts)
	require.NoError(t, err)
	back := time.Now()
	for range 5 { // right after the restart, while the driver reconnects
		write("Ann", int64(rng.IntN(6)), allCommands[rng.IntN(len(allCommands))])
	}
	// The driver reconnects within seconds; the projections that failed
	// meanwhile are retried at most retryMaxInterval (30 s) apart.
	testenv.Eventually(t, 2*time.Minute, func(context.Context) error {
		if err := s.mismatch(t, m); err != nil {
			return fmt.Errorf("%w (Cassandra was at %s before the restart, is at %s now)", err, node.CQLAddress(), restarted.CQLAddress())
		}
		return nil
	})
	t.Logf("read model converged %v after Cassandra returned (retry max interval %v); lag %s",
		time.Since(back).Round(time.Millisecond), s.cfg.Cassandra.Projection.RetryMaxInterval, s.lags.summary())
	require.Equal(t, node.CQLAddress(), restarted.CQLAddress(), "a restarted node of the same run dir comes back on its address")
}

// startStackWithDefaultReadModel is startStackWithReadModel with the default
// Cassandra configuration (timeouts, consistency, projection retries) for
// the API's and the worker's store; only hosts and keyspace are the test's.
func startStackWithDefaultReadModel(t *testing.T, hosts []string) *stack {
	t.Helper()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	migrated, _ := testenv.ReadModel(t, hosts)
	cfg.Cassandra = config.Default().Cassandra
	cfg.Cassandra.Hosts, cfg.Cassandra.Keyspace = migrated.Hosts, migrated.Keyspace
	store := readmodel.NewStore(cfg.Cassandra, testenv.Logger(), nil)
	t.Cleanup(store.Close)
	c := testenv.Client(t, cfg, "integration-test")
	lags := &lagRecorder{}
	testenv.StartWorker(t, c, cfg, activities.NewProjection(store, lags))
	return &stack{temporal: tt, cfg: cfg, client: c, api: testenv.StartAPI(t, c, cfg, store), store: store, lags: lags}
}
