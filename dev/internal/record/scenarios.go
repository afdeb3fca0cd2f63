package record

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/internal/entities"
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
	{"signalled-commands", signalled},
	{"idempotent-retry", idempotentRetry},
	{"conditional-write", conditionalWrite},
	{"rejected-pause-continue-as-new", rejectedPauseContinueAsNew},
	{"forced-projection-carried", forcedProjectionCarried},
	{"upgrade-requested", upgradeRequested},
	{"unversioned-all-commands", commands(queueUnversioned, read, add, remove, add)},
	{"unversioned-continue-as-new", unversionedContinueAsNew},
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

// batched: commands signalled while no worker runs arrive in one workflow
// task, one of them without a kind (ignored, not a repeat of the previous).
func batched(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	if err := r.signal(ctx, queueBatched, k, add, remove, read, add); err != nil {
		return err
	}
	if err := r.c.SignalWorkflow(ctx, k.WorkflowID(), "", workflows.CommandSignalName, map[string]any{}); err != nil {
		return err
	}
	if err := r.signal(ctx, queueBatched, k, remove); err != nil {
		return err
	}
	if err := r.startWorker(queueBatched, 0, false); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

// signalled: commands sent as signals to a running entity, between updates.
func signalled(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	if err := r.apply(ctx, queueMain, k, read); err != nil {
		return err
	}
	if err := r.signal(ctx, queueMain, k, add, remove); err != nil {
		return err
	}
	if err := r.settle(ctx, k); err != nil {
		return err
	}
	if err := r.apply(ctx, queueMain, k, add); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

// idempotentRetry: a keyed command sent again in the same run (Temporal
// answers it) and again after a continue-as-new (the entity answers it).
func idempotentRetry(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	e := r.entities(queueBudget)
	keyed := entities.Command{Kind: add, IdempotencyKey: "retry-me"}
	for range 2 {
		if _, err := e.Apply(ctx, k, keyed); err != nil {
			return err
		}
	}
	for i := 0; ; i++ {
		st, err := e.Apply(ctx, k, entities.Command{Kind: []workflows.CommandKind{remove, add}[i%2]})
		if err != nil {
			return err
		}
		if st.Run > 1 {
			break
		}
	}
	if _, err := e.Apply(ctx, k, keyed); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

// conditionalWrite: a write at the right version applies; one at a stale
// version is rejected before it reaches history.
func conditionalWrite(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	e := r.entities(queueMain)
	st, err := e.Apply(ctx, k, entities.Command{Kind: read})
	if err != nil {
		return err
	}
	if _, err := e.Apply(ctx, k, entities.Command{Kind: add, IfVersion: &st.Version}); err != nil {
		return err
	}
	var mismatch *entities.VersionMismatchError
	if _, err := e.Apply(ctx, k, entities.Command{Kind: remove, IfVersion: &st.Version}); !errors.As(err, &mismatch) {
		return fmt.Errorf("a stale conditional write answered %v, want a version mismatch", err)
	}
	return r.saveChain(ctx, name, k)
}

// rejectedPauseContinueAsNew: the read model rejects every projection; the
// pauses alone grow the history until the entity continues as new.
func rejectedPauseContinueAsNew(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	r.writer.script(k.UserID, plan{rejections: 1 << 20})
	if err := r.apply(ctx, queueBudget, k, add); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := r.entities(queueBudget).State(ctx, k)
		if err != nil {
			return err
		}
		if st.Run > 1 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w waiting for the continue-as-new", k, errTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.writer.script(k.UserID, plan{})
	if err := r.apply(ctx, queueBudget, k, read); err != nil {
		return err
	}
	if err := waitProjected(ctx, r, k); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
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

// forcedProjectionCarried: a new life's first command changes nothing while
// the read model is down, so its forced projection cannot finish before the
// run's history is due; the next run makes it at its start (version 5).
func forcedProjectionCarried(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	r.writer.script(k.UserID, plan{unavailable: 1 << 20})
	for {
		if err := r.apply(ctx, queueBudget, k, remove); err != nil {
			return err
		}
		st, err := r.entities(queueBudget).State(ctx, k)
		if err != nil {
			return err
		}
		if st.Run > 1 {
			break
		}
	}
	r.writer.script(k.UserID, plan{})
	if err := waitWritten(ctx, r, k); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

// upgradeRequested: `artifactstate release upgrade` asks the entity to
// continue as new at once (workflows.UpgradeUpdateName).
func upgradeRequested(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	if err := r.apply(ctx, queueMain, k, read); err != nil {
		return err
	}
	if _, err := r.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: k.WorkflowID(), UpdateName: workflows.UpgradeUpdateName,
		Args: []any{workflows.UpgradeRequest{Reason: "recording"}}, WaitForStage: client.WorkflowUpdateStageCompleted}); err != nil {
		return err
	}
	if err := waitRun(ctx, r, queueMain, k, 2); err != nil {
		return err
	}
	if err := r.apply(ctx, queueMain, k, add); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

// unversionedContinueAsNew: a run chain of an unversioned worker (version 4
// markers) under a 100-event budget.
func unversionedContinueAsNew(ctx context.Context, r *recorder, name string) error {
	k := key(name)
	for i := 0; ; i++ {
		if err := r.apply(ctx, queueUnversioned, k, []workflows.CommandKind{add, remove, read}[i%3]); err != nil {
			return err
		}
		st, err := r.entities(queueUnversioned).State(ctx, k)
		if err != nil {
			return err
		}
		if st.Run > 1 {
			break
		}
	}
	if err := r.apply(ctx, queueUnversioned, k, add); err != nil {
		return err
	}
	return r.saveChain(ctx, name, k)
}

// waitRun waits until the entity runs its run-th run.
func waitRun(ctx context.Context, r *recorder, queue string, k entityid.Key, run uint64) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		st, err := r.entities(queue).State(ctx, k)
		if err != nil {
			return err
		}
		if st.Run >= run {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %w waiting for run %d", k, errTimeout, run)
}

// waitWritten waits until the read model wrote the entity at least once.
func waitWritten(ctx context.Context, r *recorder, k entityid.Key) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if r.writer.wrote(k.UserID) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %w waiting for the read model's first write", k, errTimeout)
}
