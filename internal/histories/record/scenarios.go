package record

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

type scenario struct {
	name string
	run  func(ctx context.Context, r *recorder, name string) error
}

const (
	read   = workflows.SetArtifactReadByUser
	add    = workflows.SetArtifactAddedToUserFeed
	remove = workflows.SetArtifactRemovedFromUserFeed
)

func key(name string) entityid.Key { return entityid.Key{UserID: "rec-" + name, ArtifactID: 1} }

// commands is a scenario that sends kinds on queue, one at a time.
func commands(queue string, kinds ...workflows.CommandKind) func(context.Context, *recorder, string) error {
	return func(ctx context.Context, r *recorder, name string) error {
		if err := r.apply(ctx, queue, key(name), kinds...); err != nil {
			return err
		}
		return r.saveChain(ctx, name, key(name))
	}
}

// scenarios cover every path of the entity workflow.
var scenarios = []scenario{
	{"set-read", commands(queueMain, read)},
	{"add-to-feed", commands(queueMain, add)},
	{"remove-from-feed", commands(queueMain, remove)},
	{"all-commands", commands(queueMain, read, add, remove, add)},
	{"repeated-commands", commands(queueMain, read, read, read, add, add, remove, remove)},
	{"no-read-model", commands(queueNoProj, read, add, remove)},
	{"never-written", neverWritten},
	{"batched-commands", batched},
	{"continue-as-new", continueAsNew},
	{"projection-retried", projectionRetried},
	{"projection-rejected", projectionRejected},
	{"cancel-ignored", cancelIgnored},
	{"terminated-recreated", terminatedRecreated},
}

// neverWritten: an entity started (by hand) without any command.
func neverWritten(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	if _, err := r.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: k.WorkflowID(), TaskQueue: queueMain},
		workflows.EntityWorkflowName, workflows.EntityInput{UserID: k.UserID, ArtifactID: k.ArtifactID}); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

// batched: commands queued while no worker runs arrive in one workflow task.
func batched(ctx context.Context, r *recorder, name string) error {
	if err := r.apply(ctx, queueBatched, key(name), add, remove, read, add, remove); err != nil {
		return err
	}
	if err := r.startWorker(queueBatched, workflows.Options{}, false); err != nil {
		return err
	}
	return r.saveChain(ctx, name, key(name))
}

// continueAsNew: enough commands for several runs under a 100-event budget.
func continueAsNew(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	for i := range 45 {
		if err := r.apply(ctx, queueBudget, k, []workflows.CommandKind{add, remove, read}[i%3]); err != nil {
			return err
		}
		if err := waitProjected(ctx, r, k); err != nil {
			return err
		}
	}
	return r.saveChain(ctx, name, k)
}

// projectionRetried: the read model is down for the first two attempts.
func projectionRetried(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	r.writer.script(k.UserID, plan{unavailable: 2})
	if err := r.apply(ctx, queueMain, k, add); err != nil {
		return err
	}
	if err := waitProjected(ctx, r, k); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

// projectionRejected: the read model rejects the first projection; the next
// command wakes the projector, which then succeeds.
func projectionRejected(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	r.writer.script(k.UserID, plan{rejections: 1})
	if err := r.apply(ctx, queueMain, k, read); err != nil {
		return err
	}
	if err := r.settle(ctx, k); err != nil {
		return err
	}
	if err := r.apply(ctx, queueMain, k, add); err != nil {
		return err
	}
	if err := waitProjected(ctx, r, k); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

func cancelIgnored(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	if err := r.apply(ctx, queueMain, k, read); err != nil {
		return err
	}
	if err := r.c.CancelWorkflow(ctx, k.WorkflowID(), ""); err != nil {
		return err
	}
	if err := r.apply(ctx, queueMain, k, add); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

// terminatedRecreated: an operator terminates the entity; the next write
// starts a new run seeded with the last state.
func terminatedRecreated(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	if err := r.apply(ctx, queueMain, k, read, add); err != nil {
		return err
	}
	if err := r.settle(ctx, k); err != nil {
		return err
	}
	first, err := r.fetch(ctx, k, "")
	if err != nil {
		return err
	}
	if err := r.c.TerminateWorkflow(ctx, k.WorkflowID(), "", "recording"); err != nil {
		return err
	}
	if err := r.apply(ctx, queueMain, k, remove); err != nil {
		return err
	}
	if err := r.settle(ctx, k); err != nil {
		return err
	}
	terminated, err := r.fetch(ctx, k, first.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId())
	if err != nil {
		return err
	}
	if err := r.save(name+"-run1", terminated); err != nil {
		return err
	}
	recreated, err := r.fetch(ctx, k, "")
	if err != nil {
		return err
	}
	return r.save(name+"-run2", recreated)
}

// waitProjected waits until the read model holds the entity's version.
func waitProjected(ctx context.Context, r *recorder, k entityid.Key) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		st, err := r.entities(queueMain).State(ctx, k)
		if err != nil {
			return err
		}
		if r.writer.writtenVersion(k.UserID) >= st.Version {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %w waiting for the projection", k, errTimeout)
}
