package localcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"golang.org/x/sync/errgroup"

	"github.com/artifactstate/artifactstate/dev/internal/localcassandra"
)

// nodeTokens place the three nodes evenly on the Murmur3 ring (one token
// each; with replication factor 3 every node holds every row anyway).
var nodeTokens = [cassandraNodes]string{"-6148914691236517206", "0", "6148914691236517205"}

// nodeHost is node i's own loopback address, 127.0.0.i.
func nodeHost(i int) string { return "127.0.0." + strconv.Itoa(i) }

// seedList is every node's address: what Temporal and its schema tool get
// as Cassandra hosts.
func (c *Cluster) seedList() string {
	hosts := make([]string, cassandraNodes)
	for i := range hosts {
		hosts[i] = nodeHost(i + 1)
	}
	return strings.Join(hosts, ",")
}

// CassandraHosts is every node's host:port, the read model's contact points.
func (c *Cluster) CassandraHosts() string {
	hosts := make([]string, cassandraNodes)
	for i := range hosts {
		hosts[i] = nodeHost(i+1) + ":" + strconv.Itoa(c.st.Ports.CassandraNative)
	}
	return strings.Join(hosts, ",")
}

func (c *Cluster) nodeOptions(i int) localcassandra.Options {
	p := c.st.Ports
	seeds := make([]string, cassandraNodes)
	for j := range seeds {
		seeds[j] = nodeHost(j+1) + ":" + strconv.Itoa(p.CassandraStorage)
	}
	return localcassandra.Options{
		Version:      c.dep.CassandraVersion,
		RunDir:       filepath.Join(c.dir, "cassandra", "node-"+strconv.Itoa(i)),
		HeapMax:      c.opts.CassandraHeap,
		StartTimeout: 5 * time.Minute,
		Logger:       c.log.With("process", CassandraName(i)),
		NativePort:   p.CassandraNative,
		StoragePort:  p.CassandraStorage,
		Host:         nodeHost(i),
		Seeds:        seeds,
		InitialToken: nodeTokens[i-1],
	}
}

// startNode starts Cassandra node i (or finds it running) and records its
// process like the others', so Kill and Status treat it alike.
func (c *Cluster) startNode(ctx context.Context, i int) error {
	n, err := localcassandra.Start(ctx, c.nodeOptions(i))
	if err != nil {
		return err
	}
	argv, err := cmdline(n.PID)
	if err != nil {
		return err
	}
	return c.record(CassandraName(i), procState{PID: n.PID, Argv: argv, Address: n.CQLAddress(),
		Log: filepath.Join(n.RunDir, "logs", "cassandra.log"), StartedAt: time.Now().UTC()}, nil)
}

func cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("localcluster: read command line of pid %d: %w", pid, err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// startRing starts the seed node first, alone (two cores: three JVMs
// starting at once each take far longer), then the other two together, and
// waits until the ring answers a write at consistency ALL.
func (c *Cluster) startRing(ctx context.Context) error {
	if _, err := localcassandra.Fetch(ctx, c.nodeOptions(1)); err != nil {
		return err
	}
	if err := c.startNode(ctx, 1); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for i := 2; i <= cassandraNodes; i++ {
		g.Go(func() error { return c.startNode(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return c.waitRing(ctx, 3*time.Minute)
}

// waitRing waits until a write at consistency ALL to a keyspace replicated
// on every node succeeds: then every node is up and sees the others up.
func (c *Cluster) waitRing(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = c.writeAtAll(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Cassandra ring did not accept a write at consistency ALL within %v: %w", timeout, last)
		case <-time.After(time.Second):
		}
	}
}

func (c *Cluster) writeAtAll(ctx context.Context) error {
	cl := gocql.NewCluster(nodeHost(1), nodeHost(2), nodeHost(3))
	cl.Port = c.st.Ports.CassandraNative
	cl.Consistency = gocql.All
	cl.Timeout = 20 * time.Second // schema changes wait for agreement
	cl.ConnectTimeout = 5 * time.Second
	cl.NumConns = 1
	s, err := cl.CreateSession()
	if err != nil {
		return err
	}
	defer s.Close()
	for _, q := range []string{
		"CREATE KEYSPACE IF NOT EXISTS localcluster WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
		"CREATE TABLE IF NOT EXISTS localcluster.probe (k text PRIMARY KEY, at timestamp)",
	} {
		if err := s.Query(q).Consistency(gocql.Quorum).ExecContext(ctx); err != nil {
			return err
		}
	}
	return s.Query("INSERT INTO localcluster.probe (k, at) VALUES ('ring', toTimestamp(now()))").ExecContext(ctx)
}

// cqlPing runs a query on one node only.
func cqlPing(ctx context.Context, host string, port int) error {
	cl := gocql.NewCluster(host)
	cl.Port = port
	cl.Consistency = gocql.One
	cl.NumConns = 1
	cl.Timeout = 3 * time.Second
	cl.ConnectTimeout = 3 * time.Second
	cl.DisableInitialHostLookup = true
	s, err := cl.CreateSession()
	if err != nil {
		return err
	}
	defer s.Close()
	var v string
	return s.Query("SELECT release_version FROM system.local").ScanContext(ctx, &v)
}
