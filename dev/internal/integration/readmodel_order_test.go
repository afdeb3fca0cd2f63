package integration

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// stackOnKeyspace is a fresh Temporal server (an entity store that starts
// from zero) with a worker projecting into the given keyspace.
func stackOnKeyspace(t *testing.T, cassandra config.Cassandra) *stack {
	t.Helper()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	cfg.Cassandra = cassandra
	store := readmodel.NewStore(cassandra, testenv.Logger(), nil)
	t.Cleanup(store.Close)
	c := testenv.Client(t, cfg, "readmodel-order")
	lags := &lagRecorder{}
	testenv.StartWorker(t, c, cfg, activities.NewProjection(store, lags))
	return &stack{temporal: tt, cfg: cfg, client: c, api: testenv.StartAPI(t, c, cfg, store), store: store, lags: lags}
}

// waitForRow waits until the read model's row of the pair is want.
func (s *stack) waitForRow(t *testing.T, user string, artifact int64, want pairJSON) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		var got pairJSON
		if err := s.getJSON(t, fmt.Sprintf("/v1/users/%s/artifacts/%d?consistency=eventual", user, artifact), &got); err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("read model row %+v, want %+v", got, want)
		}
		return nil
	})
}

// An entity store that starts again from zero (history deleted after its
// retention, a wiped dev data directory, an operator's reset) writes the
// pair again from version 1, below the versions the read model holds from
// its earlier life. Its projections must still win (the projection clock
// follows wall time), and the earlier life's "read" must be deleted.
func TestPairStartedAgainFromZeroReachesTheReadModel(t *testing.T) {
	t.Parallel()
	cassandra, _ := testenv.ReadModel(t, testenv.CassandraHosts(t))
	first := stackOnKeyspace(t, cassandra)
	body := pairBody(1, "reborn")
	for _, cmd := range []string{"setArtifactReadByUser", "setArtifactAddedToUserFeed", "setArtifactRemovedFromUserFeed", "setArtifactAddedToUserFeed"} {
		require.Equal(t, `{"success":true}`, first.post(t, "/artifactState/"+cmd, body).body)
	}
	first.waitForRow(t, "reborn", 1, pairJSON{ArtifactRead: true, ArtifactInUserFeed: true, Version: 4, Consistency: "eventual"})
	other := pairBody(2, "reborn")
	for _, cmd := range []string{"setArtifactReadByUser", "setArtifactAddedToUserFeed"} {
		require.Equal(t, `{"success":true}`, first.post(t, "/artifactState/"+cmd, other).body)
	}
	first.waitForRow(t, "reborn", 2, pairJSON{ArtifactRead: true, ArtifactInUserFeed: true, Version: 2, Consistency: "eventual"})

	second := stackOnKeyspace(t, cassandra) // a new life: version 0
	require.Equal(t, `{"success":true}`, second.post(t, "/artifactState/setArtifactRemovedFromUserFeed", body).body)
	require.Equal(t, `{"success":true}`, second.post(t, "/artifactState/setArtifactAddedToUserFeed", body).body)
	second.waitForRow(t, "reborn", 1, pairJSON{ArtifactRead: false, ArtifactInUserFeed: true, Version: 1, Consistency: "eventual"})
	// A new life whose only command changes nothing still replaces the
	// earlier life's rows (history version 4).
	require.Equal(t, `{"success":true}`, second.post(t, "/artifactState/setArtifactRemovedFromUserFeed", other).body)
	second.waitForRow(t, "reborn", 2, pairJSON{ArtifactRead: false, ArtifactInUserFeed: false, Version: 0, Consistency: "eventual"})
	read, err := second.listAll(t, "reborn", "read", 10)
	require.NoError(t, err)
	require.Empty(t, read, "the earlier life's read flag is gone from the user's read list")
	feed, err := second.listAll(t, "reborn", "feed", 10)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, feed, "and the unchanged pair's feed entry too")
}

// Rows written by hand do not freeze a pair: an ordinary write (timestamp
// now) is outranked by the entity's next projection, and a row written with
// a timestamp in the future is found by the entity's first projection of a
// run, which writes above it (and counts it in the metrics).
func TestHandWrittenRowsDoNotFreezeThePair(t *testing.T) {
	t.Parallel()
	cassandra, _ := testenv.ReadModel(t, testenv.CassandraHosts(t))
	s := stackOnKeyspace(t, cassandra)
	session := cqlSession(t, cassandra)

	// A row written by hand before the pair's first projection, far in the
	// future: the first projection reads the row and writes above it.
	future := time.Now().Add(24 * time.Hour).UnixMicro()
	require.NoError(t, session.Query(`INSERT INTO artifact_state (user_id, artifact_id, artifact_read, artifact_in_user_feed, version)
		VALUES ('hand', 1, true, true, 99) USING TIMESTAMP `+strconv.FormatInt(future, 10)).Exec())
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactAddedToUserFeed", pairBody(1, "hand")).body)
	s.waitForRow(t, "hand", 1, pairJSON{ArtifactRead: false, ArtifactInUserFeed: true, Version: 1, Consistency: "eventual"})
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactRemovedFromUserFeed", pairBody(1, "hand")).body)
	s.waitForRow(t, "hand", 1, pairJSON{ArtifactRead: false, ArtifactInUserFeed: false, Version: 2, Consistency: "eventual"})

	// An ordinary write by hand (timestamp now) after another pair's
	// projections: its next projection outranks it.
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactAddedToUserFeed", pairBody(2, "hand")).body)
	s.waitForRow(t, "hand", 2, pairJSON{ArtifactRead: false, ArtifactInUserFeed: true, Version: 1, Consistency: "eventual"})
	require.NoError(t, session.Query(`UPDATE artifact_state SET artifact_read = true, artifact_in_user_feed = false, version = 77
		WHERE user_id = 'hand' AND artifact_id = 2`).Exec())
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactRemovedFromUserFeed", pairBody(2, "hand")).body)
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactAddedToUserFeed", pairBody(2, "hand")).body)
	s.waitForRow(t, "hand", 2, pairJSON{ArtifactRead: false, ArtifactInUserFeed: true, Version: 3, Consistency: "eventual"})
}

// An unread pair changing its feed flag many times writes no tombstone into
// its user's read list (a read list is read whole: past ~100k tombstones
// Cassandra refuses the read). The feed list gets one per true→false change.
// Seen by tracing a read of each partition.
func TestUnreadPairWritesNoTombstones(t *testing.T) {
	t.Parallel()
	cassandra, _ := testenv.ReadModel(t, testenv.CassandraHosts(t))
	s := stackOnKeyspace(t, cassandra)
	const flips = 10
	body := pairBody(1, "tombstones")
	for range flips {
		require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactAddedToUserFeed", body).body)
		require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactRemovedFromUserFeed", body).body)
	}
	s.waitForRow(t, "tombstones", 1, pairJSON{ArtifactRead: false, ArtifactInUserFeed: false, Version: 2 * flips, Consistency: "eventual"})
	session := cqlSession(t, cassandra)
	require.Equal(t, 0, tombstonesRead(t, session, "user_read", "tombstones"), "no tombstone in the read list")
	feed := tombstonesRead(t, session, "user_feed", "tombstones")
	require.Positive(t, feed, "the trace counts the feed list's tombstones (a removal is one)")
	t.Logf("tombstones read: user_read 0, user_feed %d", feed)
}

var tombstoneCells = regexp.MustCompile(`Read (\d+) live rows? and (\d+) tombstone cells?`)

// tombstonesRead reads the user's partition of table with tracing on and
// returns the tombstone cells the trace says the read went through.
// Cassandra writes a trace's events asynchronously, so they are polled (with
// a deadline) until the read's "Read N live rows and M tombstone cells" is
// among them.
func tombstonesRead(t *testing.T, session *gocql.Session, table, user string) int {
	t.Helper()
	var trace traceID
	iter := session.Query(`SELECT artifact_id FROM `+table+` WHERE user_id = ?`, user).Trace(&trace).Iter()
	var id int64
	for iter.Scan(&id) {
	}
	require.NoError(t, iter.Close())
	sessionID, err := gocql.UUIDFromBytes(trace.id)
	require.NoError(t, err, "the read was not traced")
	var events []string
	var m [][]string
	for deadline := time.Now().Add(20 * time.Second); ; {
		events = events[:0]
		it := session.Query(`SELECT activity FROM system_traces.events WHERE session_id = ?`, sessionID).Iter()
		var activity string
		for it.Scan(&activity) {
			events = append(events, activity)
		}
		require.NoError(t, it.Close())
		if m = tombstoneCells.FindAllStringSubmatch(strings.Join(events, "\n"), -1); len(m) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // nothing to wait on but the trace table
	}
	require.NotEmpty(t, m, "the trace says nothing about tombstones:\n%s", strings.Join(events, "\n"))
	n := 0
	for _, sub := range m {
		v, err := strconv.Atoi(sub[2])
		require.NoError(t, err)
		n += v
	}
	return n
}

// traceID is a gocql.Tracer that keeps the trace session's ID.
type traceID struct{ id []byte }

func (t *traceID) Trace(id []byte) { t.id = id }

func cqlSession(t *testing.T, cassandra config.Cassandra) *gocql.Session {
	t.Helper()
	cluster := gocql.NewCluster(cassandra.Hosts...)
	cluster.Keyspace = cassandra.Keyspace
	cluster.Consistency = gocql.One
	cluster.Timeout = 10 * time.Second
	session, err := cluster.CreateSession()
	require.NoError(t, err)
	t.Cleanup(session.Close)
	return session
}
