package localcassandra

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// SkipEnv, set to 1, skips tests that run a real Cassandra.
const SkipEnv = "ARTIFACTSTATE_SKIP_CASSANDRA"

// TestStartStop runs a real node: fetch, start, query, stop, restart on the
// same run dir (data and address must survive), stop.
func TestStartStop(t *testing.T) {
	if os.Getenv(SkipEnv) == "1" {
		t.Log("!!! Cassandra integration tests SKIPPED by request (" + SkipEnv + "=1) !!!")
		t.Skip("Cassandra tests were skipped by request: " + SkipEnv + "=1")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	opts := Options{RunDir: filepath.Join(t.TempDir(), "node"), Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}

	began := time.Now()
	if _, err := Fetch(ctx, opts); err != nil {
		t.Fatal(err)
	}
	t.Logf("fetch: %.1fs", time.Since(began).Seconds())

	n := start(ctx, t, opts)
	if n.Host != "127.0.0.1" || n.NativePort == 0 || n.PID == 0 || n.CQLAddress() == "" {
		t.Fatalf("bad node %+v", n)
	}
	if again, err := Start(ctx, opts); err != nil || again.PID != n.PID || again.NativePort != n.NativePort {
		t.Fatalf("second Start = %+v, %v; want the running node reused", again, err)
	}
	if got, err := Lookup(ctx, opts.RunDir); err != nil || got.PID != n.PID {
		t.Fatalf("Lookup = %+v, %v", got, err)
	}

	s, err := newSession(n, "")
	if err != nil {
		t.Fatal(err)
	}
	var version string
	if err := s.Query("SELECT release_version FROM system.local").ScanContext(ctx, &version); err != nil {
		t.Fatal(err)
	}
	if version != n.Version {
		t.Errorf("release_version = %q, want %q", version, n.Version)
	}
	for _, q := range []string{
		"CREATE KEYSPACE lc_test WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
		"CREATE TABLE lc_test.kv (k text PRIMARY KEY, v text)",
		"INSERT INTO lc_test.kv (k, v) VALUES ('answer', '42')",
	} {
		if err := s.Query(q).ExecContext(ctx); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	stop(ctx, t, n)

	n2 := start(ctx, t, opts)
	if n2.PID == n.PID {
		t.Fatalf("restart reused pid %d", n.PID)
	}
	if n2.NativePort != n.NativePort || n2.StoragePort != n.StoragePort {
		t.Fatalf("restart moved the node from %s (storage %d) to %s (storage %d); clients would not find it",
			n.CQLAddress(), n.StoragePort, n2.CQLAddress(), n2.StoragePort)
	}
	s, err = newSession(n2, "lc_test")
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := s.Query("SELECT v FROM kv WHERE k = 'answer'").ScanContext(ctx, &v); err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	s.Close()
	if v != "42" {
		t.Fatalf("after restart v = %q, want 42", v)
	}
	stop(ctx, t, n2)
	if _, err := Lookup(ctx, opts.RunDir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Lookup after stop = %v, want ErrNotRunning", err)
	}
	if err := StopDir(ctx, opts.RunDir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("StopDir after stop = %v, want ErrNotRunning", err)
	}
}

func start(ctx context.Context, t *testing.T, opts Options) *Node {
	t.Helper()
	began := time.Now()
	n, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("start: %.1fs (pid %d, cql %s)", time.Since(began).Seconds(), n.PID, n.CQLAddress())
	t.Cleanup(func() { // no-op when the test already stopped it
		if err := n.Stop(context.Background()); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
	})
	return n
}

func stop(ctx context.Context, t *testing.T, n *Node) {
	t.Helper()
	began := time.Now()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(n.PID) {
		t.Fatalf("pid %d still alive after Stop", n.PID)
	}
	t.Logf("stop: %.1fs", time.Since(began).Seconds())
}
