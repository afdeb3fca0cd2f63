package clusterfault

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/artifactstate/artifactstate/dev/internal/localcluster"
)

// restartEveryProcess is a deploy: every process of the cluster, one at a
// time, stopped with SIGTERM (it drains), started again and waited for
// until ready, the ring first and the api nodes last. An api node leaves
// the load's rotation before its SIGTERM and joins it again once ready, as
// a load balancer following its readiness does. PostgreSQL (visibility; a
// managed database in production, with no replica to take over here) stays.
// It returns when the first process stopped and when the last was ready.
func restartEveryProcess(ctx context.Context, t *testing.T, c *localcluster.Cluster, l *load) (began, ended time.Time) {
	t.Helper()
	began = time.Now()
	for _, name := range c.Components() {
		if name == "postgres" || name == "temporal-ui" {
			continue
		}
		node := slices.Index(c.APIURLs(), apiURLOf(c, name))
		if node >= 0 {
			l.takeOut(node)
		}
		step := time.Now()
		if err := c.Restart(ctx, name); err != nil {
			t.Fatalf("rolling restart: %s: %v", name, err)
		}
		if node >= 0 {
			l.putBack(node)
		}
		// A Cassandra node is ready when the whole ring sees it up (Start
		// waits for that): the next one may go.
		t.Logf("rolling restart: %s restarted and ready in %.1fs", name, time.Since(step).Seconds())
	}
	return began, time.Now()
}
