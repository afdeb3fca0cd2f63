package clusterfault

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/artifactstate/artifactstate/dev/internal/localcluster"
	"github.com/artifactstate/artifactstate/internal/release"
)

// rolloutWorkers rehearses a release of the workers with Worker Versioning, as the
// README's runbook does it, under the fault's load: two workers of a new
// build start beside the two running ones, the new build becomes current
// (`release promote`), the entities pinned to the old build move to it
// (each at its next command, the idle ones by `release upgrade`), and once
// none is left on the old build its workers stop (SIGTERM). It returns when
// the new build became current and when the old workers were gone.
func rolloutWorkers(ctx context.Context, t *testing.T, c *localcluster.Cluster, run string) (promoted, drained time.Time) {
	t.Helper()
	namespace := c.Deployment().Namespace
	tc, err := client.DialContext(ctx, client.Options{HostPort: c.FrontendAddress(), Namespace: namespace, Identity: "fault-test-rollout"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	const deployment = "artifactstate"
	dep := release.New(tc, deployment, slog.New(slog.NewTextHandler(t.Output(), nil)))
	routing, _, _, err := dep.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldBuild, newBuild := routing.Current, "rollout-"+run
	if oldBuild == "" {
		t.Fatalf("rollout: the workers' build is not current (routing %+v)", routing)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range []string{localcluster.WorkerName(3), localcluster.WorkerName(4)} {
		g.Go(func() error {
			return c.StartApp(gctx, name, "ARTIFACTSTATE_WORKER_VERSIONING_BUILD_ID="+newBuild,
				"ARTIFACTSTATE_WORKER_VERSIONING_PROMOTE=never")
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("rollout: start the new build's workers: %v", err)
	}
	if err := dep.SetCurrent(ctx, newBuild); err != nil {
		t.Fatalf("rollout: promote %s: %v", newBuild, err)
	}
	promoted = time.Now()
	if err := drain(ctx, tc, dep, namespace, deployment, oldBuild); err != nil {
		t.Fatalf("rollout: %v", err)
	}
	for _, name := range []string{localcluster.WorkerName(1), localcluster.WorkerName(2)} {
		if err := c.Stop(ctx, name); err != nil {
			t.Fatalf("rollout: stop %s: %v", name, err)
		}
	}
	t.Logf("rollout: %s current after %s; old build %s drained and stopped", newBuild, promoted.Format(time.TimeOnly), oldBuild)
	return promoted, time.Now()
}

// drain moves the entities pinned to oldBuild (`release upgrade`) until
// visibility lists none.
func drain(ctx context.Context, tc client.Client, dep *release.Deployment, namespace, deployment, oldBuild string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		if _, err := dep.Upgrade(ctx, release.UpgradeOptions{Namespace: namespace, Rate: 200, Reason: "fault test rollout"}); err != nil {
			return err
		}
		n, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: namespace, Query: release.PinnedToQuery(deployment, oldBuild)})
		if err != nil {
			return err
		}
		if n.GetCount() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d entities still pinned to %s: %w", n.GetCount(), oldBuild, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
