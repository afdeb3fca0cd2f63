package upgrade

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/release"
	"github.com/artifactstate/artifactstate/workflows"
)

// The releases under test: FROM is the previous release (replaytests/
// releases.txt) unless ARTIFACTSTATE_UPGRADE_FROM names a commit; TO is this
// work tree unless ARTIFACTSTATE_UPGRADE_TO names a commit. E.g. the upgrade
// that bricked entities before history version 5:
//
//	ARTIFACTSTATE_UPGRADE_FROM=4060652^ ARTIFACTSTATE_UPGRADE_TO=c39e359 \
//	  go -C dev test -run 'TestUpgrade/rolling' ./internal/upgrade/
const (
	fromEnv = "ARTIFACTSTATE_UPGRADE_FROM"
	toEnv   = "ARTIFACTSTATE_UPGRADE_TO"
)

var (
	buildOnce          sync.Once
	fromBin, toBin     Binary
	buildErr           error
	buildFrom, buildTo string
)

// binaries builds FROM and TO once for the package.
func binaries(t *testing.T) (from, to Binary) {
	t.Helper()
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		repo, err := RepoRoot(ctx, ".")
		if err != nil {
			buildErr = err
			return
		}
		buildFrom = os.Getenv(fromEnv)
		if buildFrom == "" {
			prev, err := Previous(ctx, repo, workflows.HistoryVersion)
			if err != nil {
				buildErr = err
				return
			}
			buildFrom = prev.Commit
		}
		if fromBin, buildErr = BuildCommit(ctx, repo, buildFrom); buildErr != nil {
			return
		}
		if buildTo = os.Getenv(toEnv); buildTo != "" {
			toBin, buildErr = BuildCommit(ctx, repo, buildTo)
			return
		}
		dir, err := os.MkdirTemp("", "artifactstate-worktree-bin-")
		if err != nil {
			buildErr = err
			return
		}
		toBin, buildErr = BuildWorkTree(ctx, repo, dir)
	})
	if buildErr != nil {
		t.Fatalf("build the releases under test: %v", buildErr)
	}
	t.Logf("from %s (%s) to %s", fromBin.Name, buildFrom, toBin.Name)
	return fromBin, toBin
}

// newStack is a stack in the test's directory with its own keyspace, the
// corpus's test encryption key, and a history budget of 100 events.
func newStack(t *testing.T, hosts []string) *Stack {
	t.Helper()
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.yaml")
	raw, err := os.ReadFile("../../../replaytests/testdata/encrypted/keys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewStack(StackOptions{Dir: dir, CassandraHosts: hosts, Keyspace: fmt.Sprintf("upgrade_%x", rand.Uint64()),
		KeysFile: keys, HistoryBudget: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.StopAll()
		if err := DropKeyspace(hosts, s.opts.Keyspace); err != nil {
			t.Log(err)
		}
		if t.Failed() {
			if err := NoNondeterminism(s.Procs()); err != nil {
				t.Logf("nondeterminism in the logs:\n%v", err)
			}
			for _, p := range s.Procs() {
				t.Logf("--- the last lines of %s ---\n%s", p.Name, p.Tail(60))
			}
		}
	})
	return s
}

// starter starts processes for a test: started(s.Dev(...)) takes a
// description and its error as they come.
type starter struct{ t *testing.T }

func (st starter) started(p *Proc, err error) *Proc { return start(st.t, p, err) }

func start(t *testing.T, p *Proc, err error) *Proc {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

func stop(t *testing.T, p *Proc) {
	t.Helper()
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func restart(t *testing.T, p *Proc) {
	t.Helper()
	stop(t, p)
	start(t, p, nil)
}

func temporalClient(t *testing.T, s *Stack) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// createWithFrom runs FROM's dev role alone on the stack (its embedded
// server, API and worker, as `make run` of that release), creates an entity
// of every shape that release can make through its API, and stops it.
func createWithFrom(t *testing.T, s *Stack, from Binary) *Driver {
	t.Helper()
	ctx := testCtx(t)
	dev := starter{t}.started(s.Dev(from, "from-dev", true))
	c := temporalClient(t, s)
	d, err := NewDriver(ctx, s.API, c, &ReadModelFault{Hosts: s.opts.CassandraHosts, Keyspace: s.opts.Keyspace})
	must(t, err)
	must(t, d.CreateShapes(ctx))
	must(t, d.Check(ctx))
	stop(t, dev)
	t.Logf("%s created %d entities", from.Name, len(d.Entities))
	return d
}

// continueAllAsNew asks every written entity to continue as new at once
// (the upgrade update; FROM's code, which has no such handler, refuses it
// and records nothing), and writes the chain entity through another run.
func continueAllAsNew(t *testing.T, d *Driver) {
	t.Helper()
	ctx := testCtx(t)
	for _, e := range d.Entities {
		if !e.Written || e.Closed {
			continue
		}
		_, err := d.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: e.Key.WorkflowID(),
			UpdateName: workflows.UpgradeUpdateName, Args: []any{workflows.UpgradeRequest{Reason: "upgrade test"}},
			WaitForStage: client.WorkflowUpdateStageCompleted})
		if err != nil {
			t.Logf("%s: upgrade request: %v (a run of the previous release refuses it)", e.Key, err)
		}
	}
	for _, e := range d.Entities {
		if e.Shape == "chain" {
			_, err := chain(ctx, d, e)
			must(t, err)
		}
	}
}

// finalChecks: every entity reads what its writes said, accepts a write,
// no run of any entity holds a failed workflow task, and no process logged
// a nondeterminism error.
func finalChecks(t *testing.T, s *Stack, d *Driver) {
	t.Helper()
	ctx := testCtx(t)
	must(t, d.Check(ctx))
	must(t, d.WriteAll(ctx, workflows.SetArtifactAddedToUserFeed))
	must(t, d.Check(ctx))
	if err := NoFailedTasks(ctx, d.Temporal, d.Keys()); err != nil {
		t.Error(err)
	}
	if err := NoNondeterminism(s.Procs()); err != nil {
		t.Error(err)
	}
}

// TestUpgrade upgrades a store written by the previous release to this
// code, the way a deploy does, with entities of every shape production
// holds; then every entity must read its state, accept writes and continue
// as new, with no failed workflow task and no nondeterminism anywhere.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	from, to := binaries(t)
	hosts := testenv.CassandraHosts(t)

	// The production way (worker.versioning on): the new build's workers
	// start beside the old unversioned ones; once the new build is current,
	// every entity runs on it, and no history ever goes back.
	t.Run("versioned rollout", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, hosts)
		d := createWithFrom(t, s, from)
		ctx := testCtx(t)
		starter{t}.started(s.Dev(to, "to-dev", false))
		oldWorker := starter{t}.started(s.Worker(from, "from-worker", nil))
		must(t, d.Check(ctx))
		must(t, d.WriteAll(ctx, workflows.SetArtifactRemovedFromUserFeed)) // the old build still serves
		newWorker := starter{t}.started(s.Worker(to, "to-worker", &Versioning{BuildID: "to", Promote: config.PromoteIfNoCurrent}))
		restart(t, oldWorker)
		must(t, d.Check(ctx))
		must(t, d.WriteAll(ctx, workflows.SetArtifactReadByUser)) // the new build replays the old histories
		restart(t, newWorker)
		must(t, d.Check(ctx))
		continueAllAsNew(t, d)
		stop(t, oldWorker)
		finalChecks(t, s, d)
		for _, k := range d.Keys() { // every one written (re-created) by finalChecks
			waitPinnedTo(t, d.Temporal, k, "to")
		}
	})

	// A fleet without Worker Versioning: old and new workers poll the same
	// queue, so histories replay on both builds, in both directions.
	t.Run("rolling deploy without versioning", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, hosts)
		d := createWithFrom(t, s, from)
		ctx := testCtx(t)
		var newWorker *Proc
		if to.NoWorker {
			starter{t}.started(s.Dev(to, "to-dev", false))
			newWorker = starter{t}.started(s.Worker(to, "to-worker", nil))
		} else {
			starter{t}.started(s.Dev(to, "to-dev", true)) // a build before --no-worker: its worker runs in the dev process
		}
		oldWorker := starter{t}.started(s.Worker(from, "from-worker", nil))
		must(t, d.Check(ctx))
		must(t, d.WriteAll(ctx, workflows.SetArtifactRemovedFromUserFeed)) // either build
		stop(t, oldWorker)
		must(t, d.WriteAll(ctx, workflows.SetArtifactReadByUser)) // the new build replays the old histories
		must(t, d.Check(ctx))
		start(t, oldWorker, nil)
		if newWorker != nil {
			stop(t, newWorker)
			must(t, d.WriteAll(ctx, workflows.SetArtifactAddedToUserFeed)) // the old build replays the new histories
			must(t, d.Check(ctx))
			start(t, newWorker, nil)
		}
		continueAllAsNew(t, d)
		finalChecks(t, s, d)
	})
}

// TestRollback rolls a store written by this code back to the previous
// release with Worker Versioning: the previous (unversioned) workers become
// current again, the entities pinned to this build move to them at a
// continue-as-new (`release upgrade`), never by replaying this build's
// histories, and then this build's workers can stop.
func TestRollback(t *testing.T) {
	t.Parallel()
	from, to := binaries(t)
	hosts := testenv.CassandraHosts(t)
	s := newStack(t, hosts)
	ctx := testCtx(t)
	starter{t}.started(s.Dev(to, "to-dev", false))
	newWorker := starter{t}.started(s.Worker(to, "to-worker", &Versioning{BuildID: "to", Promote: config.PromoteIfNoCurrent}))
	c := temporalClient(t, s)
	d, err := NewDriver(ctx, s.API, c, &ReadModelFault{Hosts: hosts, Keyspace: s.opts.Keyspace})
	must(t, err)
	must(t, d.CreateShapes(ctx))
	for _, k := range d.OpenKeys() {
		waitPinnedTo(t, c, k, "to")
	}

	starter{t}.started(s.Worker(from, "from-worker", nil))
	dep := release.New(c, "artifactstate", testenv.Logger())
	must(t, dep.SetCurrent(ctx, "")) // roll back: the unversioned workers are current
	fresh := &Entity{Shape: "after-rollback", Key: entityid.Key{UserID: "upgrade-after-rollback", ArtifactID: 1}}
	must(t, d.Write(ctx, fresh, workflows.SetArtifactReadByUser))
	d.Entities = append(d.Entities, fresh)
	waitPinnedTo(t, c, fresh.Key, "") // a new pair starts on the previous release
	must(t, d.Check(ctx))             // the pinned ones are still served by this build

	p, err := dep.Upgrade(ctx, release.UpgradeOptions{Namespace: "default", Rate: 100})
	must(t, err)
	t.Logf("release upgrade: %+v", p)
	for _, k := range d.OpenKeys() {
		waitPinnedTo(t, c, k, "")
	}
	stop(t, newWorker)
	finalChecks(t, s, d)
}

// waitPinnedTo waits until the entity's current run is pinned to build
// ("": not pinned, so it runs on the unversioned workers).
func waitPinnedTo(t *testing.T, c client.Client, key entityid.Key, build string) {
	t.Helper()
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		d, err := c.DescribeWorkflowExecution(ctx, key.WorkflowID(), "")
		if err != nil {
			return err
		}
		vi := d.GetWorkflowExecutionInfo().GetVersioningInfo()
		got := ""
		if vi.GetBehavior() == enumspb.VERSIONING_BEHAVIOR_PINNED {
			got = vi.GetDeploymentVersion().GetBuildId()
		}
		if got != build {
			return fmt.Errorf("%s is pinned to %q, want %q", key, got, build)
		}
		return nil
	})
}
