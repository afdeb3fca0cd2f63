package readmodel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/artifactstate/artifactstate/internal/config"
)

func TestMigrationsAreOrderedAndSplit(t *testing.T) {
	t.Parallel()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("migrations = %+v, want version 1 first", ms)
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Fatalf("%s is not after %s", m.Name, ms[i-1].Name)
		}
		for _, stmt := range m.Statements {
			if strings.Contains(stmt, "--") || strings.HasSuffix(stmt, ";") {
				t.Fatalf("%s: statement keeps a comment or a ';': %q", m.Name, stmt)
			}
			if !strings.Contains(stmt, "IF NOT EXISTS") {
				t.Fatalf("%s: every statement must be idempotent: %q", m.Name, stmt)
			}
		}
	}
	if got := len(ms[0].Statements); got != 3 {
		t.Fatalf("001 has %d statements, want the 3 tables", got)
	}
}

func TestSplitStatements(t *testing.T) {
	t.Parallel()
	got := splitStatements("-- a comment\nCREATE TABLE a (x int);\n\nCREATE TABLE b ( -- trailing\n  y int\n);\nLAST")
	want := []string{"CREATE TABLE a (x int)", "CREATE TABLE b (\n  y int\n)", "LAST"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestKeyspaceCQL(t *testing.T) {
	t.Parallel()
	cfg := config.Default().Cassandra
	if got := KeyspaceCQL(cfg); got != "CREATE KEYSPACE IF NOT EXISTS artifactstate WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" {
		t.Fatal(got)
	}
	cfg.Replication = config.Replication{Class: "NetworkTopologyStrategy", Datacenters: map[string]int{"eu": 3, "us": 2}}
	if got := KeyspaceCQL(cfg); !strings.HasSuffix(got, "{'class': 'NetworkTopologyStrategy', 'eu': 3, 'us': 2}") {
		t.Fatal(got)
	}
}

type requestErr struct{ code int }

func (e requestErr) Code() int       { return e.code }
func (e requestErr) Message() string { return "m" }
func (e requestErr) Error() string   { return fmt.Sprintf("code %x", e.code) }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

// Cassandra's errors are classified once: what retrying can fix, and what not.
func TestClassify(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err       error
		kind      string
		retryable bool
	}{
		{requestErr{gocql.ErrCodeUnavailable}, "unavailable", true},
		{requestErr{gocql.ErrCodeOverloaded}, "unavailable", true},
		{requestErr{gocql.ErrCodeWriteTimeout}, "timeout", true},
		{requestErr{gocql.ErrCodeReadTimeout}, "timeout", true},
		{requestErr{gocql.ErrCodeSyntax}, "rejected", false},
		{requestErr{gocql.ErrCodeInvalid}, "rejected", false},
		{requestErr{gocql.ErrCodeUnauthorized}, "rejected", false},
		{gocql.ErrNoConnections, "unavailable", true},
		{gocql.ErrKeyspaceDoesNotExist, "unavailable", true},
		{gocql.ErrTimeoutNoResponse, "timeout", true},
		{context.DeadlineExceeded, "timeout", true},
		{timeoutErr{}, "timeout", true},
		{errors.New("something new"), "unavailable", true},
	} {
		err := classify(c.err)
		if Kind(err) != c.kind || Retryable(err) != c.retryable {
			t.Errorf("%v: kind %s retryable %t, want %s %t", c.err, Kind(err), Retryable(err), c.kind, c.retryable)
		}
		if !errors.Is(classify(err), ErrUnavailable) && !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrRejected) {
			t.Errorf("%v is not classified", c.err)
		}
	}
	if classify(nil) != nil {
		t.Error("nil must stay nil")
	}
}

// The watchdog replaces a session only after it has had no host for
// staleSessionAfter, never while the driver has a connection (even one that
// answers errors), and then waits as long again before the next try.
func TestStalenessReplacesOnlyAfterAWhileWithoutHosts(t *testing.T) {
	var st staleness
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	noHosts := fmt.Errorf("query: %w", gocql.ErrNoConnections)
	steps := []struct {
		at   time.Duration
		err  error
		want bool
	}{
		{0, nil, false},
		{5 * time.Second, noHosts, false}, // lost: start counting
		{5*time.Second + staleSessionAfter - time.Second, noHosts, false},        // not yet
		{5*time.Second + staleSessionAfter, noHosts, true},                       // stale: replace
		{6*time.Second + staleSessionAfter, noHosts, false},                      // counting again
		{5*time.Second + 2*staleSessionAfter, noHosts, true},                     // next try, as long again later
		{6*time.Second + 2*staleSessionAfter, gocql.ErrTimeoutNoResponse, false}, // a connection: reset
		{7*time.Second + 2*staleSessionAfter, noHosts, false},
		{7*time.Second + 3*staleSessionAfter - time.Second, nil, false}, // answered: reset
		{7*time.Second + 3*staleSessionAfter, noHosts, false},
		{8*time.Second + 4*staleSessionAfter, noHosts, true},
	}
	for i, s := range steps {
		if got := st.observe(s.err, at(s.at)); got != s.want {
			t.Fatalf("step %d (t=%v, err=%v): replace = %t, want %t", i, s.at, s.err, got, s.want)
		}
	}
}
