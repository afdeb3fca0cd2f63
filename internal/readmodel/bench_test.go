package readmodel

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/artifactstate/artifactstate/internal/config"
)

// BenchmarkProjectionWrite compares the two ways to keep the read model from
// going backwards: what Store.Write does (an unlogged batch of the three
// tables USING TIMESTAMP <version>) against a lightweight transaction on the
// state row alone (UPDATE ... IF version < ?), which costs a Paxos round.
// Needs ARTIFACTSTATE_TEST_CASSANDRA_HOSTS (`make bench` sets it).
func BenchmarkProjectionWrite(b *testing.B) {
	hosts := os.Getenv("ARTIFACTSTATE_TEST_CASSANDRA_HOSTS")
	if hosts == "" {
		b.Skip("needs ARTIFACTSTATE_TEST_CASSANDRA_HOSTS")
	}
	cfg := config.Default().Cassandra
	cfg.Hosts = strings.Split(hosts, ",")
	cfg.Keyspace = fmt.Sprintf("bench_%x", rand.Uint32())
	cfg.Consistency = "ONE"
	cfg.Timeout = 10 * time.Second
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	if err := Migrate(ctx, cfg, logger); err != nil {
		b.Fatal(err)
	}
	defer func() {
		s, err := newCluster(cfg, "").CreateSession()
		if err == nil {
			_ = s.Query("DROP KEYSPACE " + cfg.Keyspace).Exec()
			s.Close()
		}
	}()
	store := NewStore(cfg, logger, nil)
	defer store.Close()

	b.Run("timestamp-batch", func(b *testing.B) {
		b.ReportAllocs()
		var version uint64
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for pb.Next() {
				v := version + 1 + rng.Uint64N(3)
				row := Row{UserID: "u" + fmt.Sprint(rng.IntN(1000)), ArtifactID: rng.Int64N(500), ArtifactRead: true,
					ArtifactInUserFeed: rng.IntN(2) == 0, Version: v, ChangedAt: time.Now()}
				if err := store.Project(ctx, Projection{Row: row, Timestamp: int64(v), RemoveFromFeed: !row.ArtifactInUserFeed}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	b.Run("conditional-update", func(b *testing.B) {
		session, err := store.connect()
		if err != nil {
			b.Fatal(err)
		}
		for u := range 1000 {
			for a := range 5 {
				if err := session.Query(`INSERT INTO artifact_state (user_id, artifact_id, version) VALUES (?, ?, 0)`,
					"c"+fmt.Sprint(u), int64(a)).Exec(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
			v := int64(0)
			for pb.Next() {
				v++
				q := session.Query(`UPDATE artifact_state SET artifact_read = ?, artifact_in_user_feed = ?, version = ?
					WHERE user_id = ? AND artifact_id = ? IF version < ?`,
					true, rng.IntN(2) == 0, v, "c"+fmt.Sprint(rng.IntN(1000)), rng.Int64N(5), v).SerialConsistency(gocql.LocalSerial)
				if _, err := q.MapScanCAS(map[string]any{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
