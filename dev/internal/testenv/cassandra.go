package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/readmodel"
)

// CassandraHostsEnv names the running Cassandra the tests use (`make test`
// starts one and sets it).
const CassandraHostsEnv = "ARTIFACTSTATE_TEST_CASSANDRA_HOSTS"

// SkipCassandraEnv, set to 1, skips the tests that need Cassandra.
const SkipCassandraEnv = "ARTIFACTSTATE_SKIP_CASSANDRA"

// CassandraHosts returns the test Cassandra's contact points. Without one
// the test fails, unless the developer opted out with
// ARTIFACTSTATE_SKIP_CASSANDRA=1, which skips it loudly.
func CassandraHosts(t testing.TB) []string {
	t.Helper()
	if os.Getenv(SkipCassandraEnv) == "1" {
		t.Skipf("!!! SKIPPED: needs Cassandra, and %s=1 asked to skip such tests !!!", SkipCassandraEnv)
	}
	hosts := os.Getenv(CassandraHostsEnv)
	if hosts == "" {
		t.Fatalf("this test needs a real Cassandra: run it through `make test`, or start one with "+
			"`scripts/cassandra start --dir /tmp/c` and set %s=127.0.0.1:<port> (or %s=1 to skip)", CassandraHostsEnv, SkipCassandraEnv)
	}
	return strings.Split(hosts, ",")
}

// ReadModel creates a fresh keyspace with the schema on the test Cassandra
// (dropped with the test) and returns its config and a Store on it.
func ReadModel(t testing.TB, hosts []string) (config.Cassandra, *readmodel.Store) {
	t.Helper()
	cfg := config.Default().Cassandra
	cfg.Hosts = hosts
	cfg.Keyspace = fmt.Sprintf("test_%d_%x", time.Now().Unix(), rand.Uint32())
	cfg.Consistency = "ONE"
	cfg.Timeout = 10 * time.Second // schema changes are slow on two cores
	cfg.Projection.RetryInitialInterval = 200 * time.Millisecond
	cfg.Projection.RetryMaxInterval = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := readmodel.Migrate(ctx, cfg, Logger()); err != nil {
		t.Fatalf("migrate the test keyspace: %v", err)
	}
	t.Cleanup(func() { dropKeyspace(t, cfg) })
	store := readmodel.NewStore(cfg, Logger(), nil)
	t.Cleanup(store.Close)
	return cfg, store
}

func dropKeyspace(t testing.TB, cfg config.Cassandra) {
	c := gocql.NewCluster(cfg.Hosts...)
	c.Timeout = 30 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		t.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
		return
	}
	defer s.Close()
	if err := s.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).Exec(); err != nil {
		t.Logf("drop keyspace %s: %v", cfg.Keyspace, err)
	}
}
