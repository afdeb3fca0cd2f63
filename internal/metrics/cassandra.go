package metrics

import (
	"context"
	"strings"
	"sync"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Cassandra observes every query and batch of a gocql session (set it as
// the cluster's QueryObserver and BatchObserver).
type Cassandra struct {
	m   *Metrics
	ops sync.Map // statement → operation label
}

// Cassandra returns the gocql observer feeding these metrics.
func (m *Metrics) Cassandra() *Cassandra { return &Cassandra{m: m} }

// ObserveQuery implements gocql.QueryObserver.
func (c *Cassandra) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	c.observe(c.operation(q.Statement), q.End.Sub(q.Start).Seconds(), q.Err)
}

// ObserveBatch implements gocql.BatchObserver.
func (c *Cassandra) ObserveBatch(_ context.Context, b gocql.ObservedBatch) {
	c.observe("BATCH", b.End.Sub(b.Start).Seconds(), b.Err)
}

func (c *Cassandra) observe(op string, seconds float64, err error) {
	c.m.cassandraDuration.WithLabelValues(op).Observe(seconds)
	// Creating the series at 0 lets rate() and alerts see it before the
	// first error.
	errs := c.m.cassandraErrors.WithLabelValues(op)
	if err != nil {
		errs.Inc()
	}
}

// operation names a statement by its verb and table ("SELECT user_feed"),
// keeping the label's cardinality to the statements the code has.
func (c *Cassandra) operation(stmt string) string {
	if op, ok := c.ops.Load(stmt); ok {
		return op.(string)
	}
	op := OperationOf(stmt)
	c.ops.Store(stmt, op)
	return op
}

// OperationOf is the verb of stmt and the table (or keyspace) it names.
func OperationOf(stmt string) string {
	words := strings.Fields(stmt)
	if len(words) == 0 {
		return "UNKNOWN"
	}
	verb := strings.ToUpper(words[0])
	if verb == "UPDATE" && len(words) > 1 {
		return verb + " " + words[1]
	}
	for i := 0; i+1 < len(words); i++ {
		switch strings.ToUpper(words[i]) {
		case "FROM", "INTO", "EXISTS":
			return verb + " " + strings.TrimRight(words[i+1], "(")
		}
	}
	return verb
}
