package clusterfault

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/faultload"
	"github.com/artifactstate/artifactstate/dev/internal/localcluster"
)

// restartEveryProcess is a deploy: every process of the cluster, one at a
// time, stopped with SIGTERM (it drains), started again and waited for
// until ready, the ring first and the api nodes last. An api node leaves
// the load's rotation before its SIGTERM and joins it again once ready, as
// a load balancer following its readiness does. PostgreSQL (visibility; a
// managed database in production, with no replica to take over here) stays.
// The Cassandra nodes take 35-60 s each to drain and start on two busy
// cores: they are restarted only with ringRestartEnv=1 (0 failed calls in
// the run recorded in docs/benchmarks.md), to keep the test in its budget.
// It returns when the first process stopped, when the last was ready, and
// each step.
func restartEveryProcess(ctx context.Context, t *testing.T, c *localcluster.Cluster, l *faultload.Load) (began, ended time.Time, steps []restartStep) {
	t.Helper()
	began = time.Now()
	ring := os.Getenv(ringRestartEnv) == "1"
	for _, name := range c.Components() {
		if name == "postgres" || name == "temporal-ui" || (!ring && strings.HasPrefix(name, "cassandra-")) {
			continue
		}
		node := c.APINode(name)
		if node >= 0 {
			l.TakeOut(node)
		}
		step := time.Now()
		if err := c.Restart(ctx, name); err != nil {
			t.Fatalf("rolling restart: %s: %v", name, err)
		}
		if node >= 0 {
			l.PutBack(node)
		}
		steps = append(steps, restartStep{name: name, Span: faultload.Span{From: step, To: time.Now()}})
		// A Cassandra node is ready when the whole ring sees it up (Start
		// waits for that): the next one may go.
		t.Logf("rolling restart: %s restarted and ready in %.1fs", name, time.Since(step).Seconds())
	}
	return began, time.Now(), steps
}

// restartStep is one process's restart in a rolling restart.
type restartStep struct {
	name string
	faultload.Span
}

// singleInstance are the processes the local cluster runs once, where
// production runs several behind a load balancer: a restart of one stops
// its service for a moment (the local cluster dials one frontend address),
// so the calls failing during it are reported, not counted against the
// rolling restart's bound of none.
var singleInstance = []string{localcluster.FrontendName}

// failedDuring returns the failed calls that overlapped the restart of one
// of names (from its SIGTERM to requestTimeout after it was ready: a call
// sent before may have waited on it until its deadline).
func failedDuring(calls []faultload.Call, steps []restartStep, names []string, requestTimeout time.Duration) []faultload.Call {
	var out []faultload.Call
	for _, c := range calls {
		if c.Err == nil {
			continue
		}
		for _, s := range steps {
			if slices.Contains(names, s.name) && !c.Ended.Before(s.From) && !c.Began.After(s.To.Add(requestTimeout)) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}
