package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/activities"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/readmodel"
	"github.com/artifactstate/artifactstate/workflows"
)

// slowReadModel makes every projection take a while, so every workflow task
// of an entity that changed takes that long (the projection runs locally,
// inside the task): a worker that cannot keep up.
type slowReadModel struct{ delay time.Duration }

func (s slowReadModel) Project(ctx context.Context, _ readmodel.Projection) error {
	select {
	case <-time.After(s.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (slowReadModel) Stamp(context.Context, string, int64) (readmodel.Stamp, bool, error) {
	return readmodel.Stamp{}, false, nil
}

// A new entity's first workflow task goes to the entity queue, every later
// task to the worker's own sticky queue. With a fixed set of pollers the SDK
// sends every poll to the sticky queue while it reports a backlog, so under a
// steady load on existing entities new pairs waited for seconds and their
// first write and read timed out. With autoscaling pollers the worker keeps
// polling both queues: every new pair is served within the request timeout.
// Run it with pollerBehavior "simple" to see it fail.
func TestNewPairsAreServedWhileExistingOnesKeepTheWorkerBusy(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	cfg.API.RequestTimeout = 20 * time.Second
	// Two task slots and 50 ms per changing task: about 40 tasks/s.
	cfg.Worker.MaxConcurrentWorkflowTasks = 2
	if os.Getenv("ARTIFACTSTATE_TEST_SIMPLE_POLLERS") == "1" {
		// The shipped configuration before the fix, to see this test fail.
		cfg.Worker.PollerBehavior, cfg.Worker.WorkflowTaskPollers = "simple", 4
	}
	c := testenv.Client(t, cfg, "starvation-test")
	testenv.StartWorker(t, c, cfg, activities.NewProjection(slowReadModel{delay: 50 * time.Millisecond}, nil))
	s := &stack{temporal: tt, cfg: cfg, client: c, api: testenv.StartAPI(t, c, cfg, nil)}
	checkStarvation(t, s)
}

func checkStarvation(t *testing.T, s *stack) {
	t.Helper()
	// 60 busy entities, each flipped about every 0.75 s by signals (accepted
	// by the server alone, so this load does not wait for the worker): more
	// changing tasks than the worker can run, a standing sticky backlog.
	const busy = 60
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	loadErr := make(chan error, 1)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				k := entityid.Key{UserID: "busy", ArtifactID: int64(w*busy/4 + i%(busy/4))}
				kind := []workflows.CommandKind{workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed}[i/(busy/4)%2]
				_, err := s.client.SignalWithStartWorkflow(ctx, k.WorkflowID(), workflows.CommandSignalName, workflows.Command{Kind: kind},
					startOptions(s.cfg, k), workflows.EntityWorkflowName, workflows.EntityInput{UserID: k.UserID, ArtifactID: k.ArtifactID})
				if err != nil && ctx.Err() == nil {
					select {
					case loadErr <- err:
					default:
					}
					return
				}
			}
		}()
	}
	waitForStickyBacklog(t, s, busy)

	// While the busy entities keep their backlog, new pairs keep coming.
	// Starved, the first of them waits until the load stops; served, each
	// takes well under a second on a quiet machine. The window and the count
	// leave room for a machine many times slower.
	const want, window = 10, 60 * time.Second
	deadline := time.Now().Add(window)
	served := 0
	for p := 0; served < want && time.Now().Before(deadline); p++ {
		user := fmt.Sprintf("new-%d", p)
		started := time.Now()
		w, err := try(http.MethodPost, s.api.URL+"/artifactState/setArtifactAddedToUserFeed", pairBody(1, user))
		if err != nil {
			t.Fatal(err)
		}
		if w.status != http.StatusOK {
			t.Logf("new pair %d: write answered %d %s after %v", p, w.status, w.body, time.Since(started))
			continue
		}
		r := s.get(t, "/artifactState/isArtifactInUserFeed", 1, user)
		if want := fmt.Sprintf(`{"answer":true,"artifactId":1,"userId":"%s"}`, user); r.body != want {
			t.Fatalf("new pair %d: read answered %d %s after %v, want %s", p, r.status, r.body, time.Since(started), want)
		}
		served++
		t.Logf("new pair %d written and read in %v", p, time.Since(started).Round(time.Millisecond))
	}
	if served < want {
		t.Fatalf("only %d new pairs were served in %v while existing ones kept the worker busy, want %d", served, window, want)
	}
	select {
	case err := <-loadErr:
		t.Fatalf("the background load failed: %v", err)
	default:
	}
}

// waitForStickyBacklog waits until the busy entities have workflow tasks
// waiting: the condition the new pairs must be served under.
func waitForStickyBacklog(t *testing.T, s *stack, busy int) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		pending := 0
		for i := range busy {
			k := entityid.Key{UserID: "busy", ArtifactID: int64(i)}
			d, err := s.client.DescribeWorkflowExecution(ctx, k.WorkflowID(), "")
			if err != nil {
				return err
			}
			if d.GetPendingWorkflowTask() != nil {
				pending++
			}
		}
		if pending < busy/3 {
			return fmt.Errorf("only %d of %d busy entities have a workflow task waiting", pending, busy)
		}
		return nil
	})
}

func startOptions(cfg config.Config, k entityid.Key) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: k.WorkflowID(), TaskQueue: cfg.Temporal.TaskQueue}
}
