package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/release"
	"github.com/artifactstate/artifactstate/workflows"
)

// versionedConfig is cfg with Worker Versioning on for build buildID.
func versionedConfig(cfg config.Config, buildID, promote string) config.Config {
	cfg.Worker.Versioning = config.Versioning{Enabled: true, DeploymentName: "artifactstate", BuildID: buildID, Promote: promote}
	return cfg
}

// pinnedTo is the build the entity's current run is pinned to ("" when it
// is not pinned) and its run ID.
func pinnedTo(ctx context.Context, c client.Client, key entityid.Key) (build, runID string, err error) {
	d, err := c.DescribeWorkflowExecution(ctx, key.WorkflowID(), "")
	if err != nil {
		return "", "", err
	}
	info := d.GetWorkflowExecutionInfo()
	vi := info.GetVersioningInfo()
	if vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_PINNED {
		return "", info.GetExecution().GetRunId(), nil
	}
	return vi.GetDeploymentVersion().GetBuildId(), info.GetExecution().GetRunId(), nil
}

// waitPinned waits until the entity's current run is pinned to build.
func waitPinned(t *testing.T, c client.Client, key entityid.Key, build string) string {
	t.Helper()
	var runID string
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		got, run, err := pinnedTo(ctx, c, key)
		if err != nil {
			return err
		}
		if got != build {
			return fmt.Errorf("%s is pinned to %q, want %q", key, got, build)
		}
		runID = run
		return nil
	})
	return runID
}

// A versioned rollout: entities run pinned to the build that started them;
// a new current build takes new pairs at once, an entity that gets a
// command moves at that command (its run continues as new onto the new
// build), an idle one when `release upgrade` asks it to; no history is ever
// replayed by another build, and the old build can then stop.
func TestVersionedRolloutMovesEntitiesAtContinueAsNew(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	ctx := context.Background()
	c := testenv.Client(t, cfg, "versioning-test")
	e := entities.New(c, testenv.EntitiesOptions(cfg), testenv.Logger())
	dep := release.New(c, "artifactstate", testenv.Logger())

	oldCfg := versionedConfig(cfg, "build-old", config.PromoteIfNoCurrent)
	oldWorker := testenv.StartWorker(t, testenv.Client(t, oldCfg, "worker-old"), oldCfg, nil)
	promote(t, dep, oldCfg)

	active, idle := entityid.Key{UserID: "active", ArtifactID: 1}, entityid.Key{UserID: "idle", ArtifactID: 1}
	for _, k := range []entityid.Key{active, idle} {
		if _, err := e.Apply(ctx, k, entities.Command{Kind: workflows.SetArtifactReadByUser}); err != nil {
			t.Fatal(err)
		}
		waitPinned(t, c, k, "build-old")
	}

	newCfg := versionedConfig(cfg, "build-new", config.PromoteNever)
	testenv.StartWorker(t, testenv.Client(t, newCfg, "worker-new"), newCfg, nil)
	if err := dep.SetCurrent(ctxTimeout(t, time.Minute), "build-new"); err != nil {
		t.Fatal(err)
	}

	// A new pair starts on the new build.
	fresh := entityid.Key{UserID: "fresh", ArtifactID: 1}
	if _, err := e.Apply(ctx, fresh, entities.Command{Kind: workflows.SetArtifactAddedToUserFeed}); err != nil {
		t.Fatal(err)
	}
	waitPinned(t, c, fresh, "build-new")

	// The active entity's next command is applied, and its run continues as
	// new onto the new build.
	_, oldRun, err := pinnedTo(ctx, c, active)
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.Apply(ctx, active, entities.Command{Kind: workflows.SetArtifactAddedToUserFeed})
	if err != nil {
		t.Fatal(err)
	}
	if !st.ArtifactRead || !st.ArtifactInUserFeed {
		t.Fatalf("state after the command: %+v", st)
	}
	if newRun := waitPinned(t, c, active, "build-new"); newRun == oldRun {
		t.Fatal("the active entity moved without a new run")
	}

	// The idle entity stays on the old build until asked.
	if build, _, err := pinnedTo(ctx, c, idle); err != nil || build != "build-old" {
		t.Fatalf("the idle entity: pinned to %q (%v), want build-old", build, err)
	}
	countPinned(t, c, cfg, "build-old", 1)
	p, err := dep.Upgrade(ctxTimeout(t, time.Minute), release.UpgradeOptions{Namespace: cfg.Temporal.Namespace, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	if p.Remaining != 1 || p.Asked != 1 {
		t.Fatalf("upgrade: %+v, want 1 entity asked", p)
	}
	waitPinned(t, c, idle, "build-new")
	countPinned(t, c, cfg, "build-old", 0)

	// Nothing needs the old build any more.
	oldWorker.Stop()
	for _, k := range []entityid.Key{active, idle, fresh} {
		st, err := e.State(ctxTimeout(t, 30*time.Second), k)
		if err != nil {
			t.Fatalf("read %s after the old build stopped: %v", k, err)
		}
		if st.Run < 1 {
			t.Fatalf("%s: %+v", k, st)
		}
	}
	if st, err := e.Apply(ctx, idle, entities.Command{Kind: workflows.SetArtifactAddedToUserFeed}); err != nil || !st.ArtifactInUserFeed || !st.ArtifactRead {
		t.Fatalf("write the moved idle entity: %+v, %v", st, err)
	}
	noFailedTasks(t, c, active, idle, fresh)
}

// Entities written by unversioned workers (the previous release) move to
// the first versioned build at their next task once it is current.
func TestUnversionedEntitiesMoveToTheFirstVersionedBuild(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	cfg.Worker.Versioning.Enabled = false
	ctx := context.Background()
	c := testenv.Client(t, cfg, "versioning-test")
	e := entities.New(c, testenv.EntitiesOptions(cfg), testenv.Logger())

	unversioned := testenv.StartWorker(t, testenv.Client(t, cfg, "worker-unversioned"), cfg, nil)
	key := entityid.Key{UserID: "before", ArtifactID: 7}
	if _, err := e.Apply(ctx, key, entities.Command{Kind: workflows.SetArtifactReadByUser}); err != nil {
		t.Fatal(err)
	}
	if build, _, err := pinnedTo(ctx, c, key); err != nil || build != "" {
		t.Fatalf("unversioned entity pinned to %q (%v)", build, err)
	}

	vCfg := versionedConfig(cfg, "first-versioned", config.PromoteIfNoCurrent)
	testenv.StartWorker(t, testenv.Client(t, vCfg, "worker-versioned"), vCfg, nil)
	promote(t, release.New(c, "artifactstate", testenv.Logger()), vCfg)
	unversioned.Stop()

	st, err := e.Apply(ctx, key, entities.Command{Kind: workflows.SetArtifactAddedToUserFeed})
	if err != nil {
		t.Fatal(err)
	}
	if !st.ArtifactRead || !st.ArtifactInUserFeed || st.Version != 2 {
		t.Fatalf("state: %+v", st)
	}
	waitPinned(t, c, key, "first-versioned")
	noFailedTasks(t, c, key)
}

// promote makes the worker's build current as its policy says (what the
// worker module does at start-up).
func promote(t *testing.T, d *release.Deployment, cfg config.Config) {
	t.Helper()
	v := cfg.Worker.Versioning
	if _, err := d.Promote(ctxTimeout(t, time.Minute), v.BuildID, v.Promote); err != nil {
		t.Fatal(err)
	}
}

func countPinned(t *testing.T, c client.Client, cfg config.Config, build string, want int64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		n, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: cfg.Temporal.Namespace, Query: release.PinnedToQuery("artifactstate", build)})
		if err != nil {
			return err
		}
		if n.GetCount() != want {
			return fmt.Errorf("%d running entities pinned to %s, want %d", n.GetCount(), build, want)
		}
		return nil
	})
}

// noFailedTasks fails the test if any run of the entities holds a failed
// workflow task (a replay on another build that went wrong).
func noFailedTasks(t *testing.T, c client.Client, keys ...entityid.Key) {
	t.Helper()
	for _, k := range keys {
		eachRunEvent(t, c, k.WorkflowID(), func(runID string, ev *historypb.HistoryEvent) {
			if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED {
				t.Errorf("%s run %s: failed workflow task: %v", k, runID, ev.GetWorkflowTaskFailedEventAttributes().GetFailure().GetMessage())
			}
		})
	}
}

// eachRunEvent calls f with every event of every run of a workflow, walking
// the continue-as-new chain back from the current run ("" names it).
func eachRunEvent(t *testing.T, c client.Client, workflowID string, f func(runID string, ev *historypb.HistoryEvent)) {
	t.Helper()
	ctx := ctxTimeout(t, time.Minute)
	for runID := ""; ; {
		it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		previous := ""
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("history of %s run %s: %v", workflowID, runID, err)
			}
			f(runID, ev)
			if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
				previous = a.GetContinuedExecutionRunId()
			}
		}
		if previous == "" {
			return
		}
		runID = previous
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
