package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/loadtest"
	"github.com/artifactstate/artifactstate/workflows"
)

// minimalQueue is the queue of the minimal workflow of the creation floor.
const minimalQueue = "bench-minimal"

// minimal is the smallest workflow there is: it completes in its first
// task. Starting one and waiting for its result is the floor of what
// creating an entity costs on this server.
func minimal(workflow.Context) error { return nil }

// creation measures what a new workflow costs, in alternating rounds: the
// floor (a minimal workflow started and run to completion), the raw SDK's
// update-with-start of a new entity (the API's write to a pair never seen),
// and the API's write to a new pair over HTTP.
func (e *env) creation(ctx context.Context, res *Results) error {
	o := e.opts
	w := sdkworker.New(e.client, minimalQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(minimal, workflow.RegisterOptions{Name: "BenchMinimal"})
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	api, err := loadtest.NewClient(e.apiURL, loadtest.ClientOptions{MaxConns: 4 * o.Concurrency, Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer api.Close()
	var seq atomic.Uint64
	run := time.Now().UnixNano()
	fresh := func() entityid.Key {
		n := seq.Add(1)
		return entityid.Key{UserID: fmt.Sprintf("new-%x-%d", run, n), ArtifactID: int64(n)}
	}
	minimalOp := func(int) loadtest.Op {
		id := fmt.Sprintf("bench-minimal-%x-%d", run, seq.Add(1))
		return loadtest.Op{Call: "minimal", Do: func(ctx context.Context) loadtest.Result {
			r, err := e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: minimalQueue, EnableEagerStart: o.Eager}, "BenchMinimal")
			if err == nil {
				err = r.Get(ctx, nil)
			}
			return loadtest.Result{Err: err, Write: true, Acked: err == nil}
		}}
	}
	rawNew := func(int) loadtest.Op {
		k := fresh()
		return loadtest.Op{Call: "update-with-start", Do: func(ctx context.Context) loadtest.Result {
			start := e.client.NewWithStartWorkflowOperation(client.StartWorkflowOptions{ID: k.WorkflowID(), TaskQueue: e.cfg.Temporal.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}, workflows.EntityWorkflowName,
				workflows.EntityInput{UserID: k.UserID, ArtifactID: k.ArtifactID})
			h, err := e.client.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{StartWorkflowOperation: start,
				UpdateOptions: client.UpdateWorkflowOptions{UpdateName: workflows.CommandUpdateName, WaitForStage: client.WorkflowUpdateStageCompleted,
					Args: []any{workflows.CommandRequest{Kind: workflows.SetArtifactAddedToUserFeed}}}})
			if err == nil {
				var r workflows.CommandResult
				err = h.Get(ctx, &r)
			}
			return loadtest.Result{Err: err, Write: true, Acked: err == nil}
		}}
	}
	apiNew := func(w int) loadtest.Op { return api.WriteOp(workflows.SetArtifactAddedToUserFeed, fresh(), w) }
	floor, raw := e.rounds(ctx, "create: minimal workflow", minimalOp, "create: raw SDK update-with-start", rawNew)
	_, apiWrite := e.rounds(ctx, "create: raw SDK update-with-start (again)", rawNew, "create: API write, new pair", apiNew)
	res.Phases = append(res.Phases, floor, raw, apiWrite)
	res.Ratios.NewPairToFloor = raw.Throughput / floor.Throughput
	res.Ratios.APINewPairToRaw = apiWrite.Throughput / raw.Throughput
	o.logf("ratios: raw update-with-start of a new entity / minimal workflow %.2f, API new pair / raw %.2f",
		res.Ratios.NewPairToFloor, res.Ratios.APINewPairToRaw)
	return nil
}
