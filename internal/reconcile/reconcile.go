// Package reconcile keeps closed entities alive. An entity workflow never
// ends on its own; when an operator terminates one (or a run fails), its
// state lives only in that run's history, which Temporal deletes when the
// namespace's retention passes (after that, reads would answer "never
// written" and the next write would start from zero). The reconciler lists
// the entities that closed recently and starts each again from its folded
// state, long before retention can pass. Several processes may run it: a
// re-creation is refused when the entity already runs.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// Recreator starts a closed entity again (entities.Client).
type Recreator interface {
	Recreate(ctx context.Context, key entityid.Key) error
}

// Reconciler scans visibility for closed entities and re-creates them.
type Reconciler struct {
	temporal  client.Client
	entities  Recreator
	namespace string
	interval  time.Duration
	logger    *slog.Logger
	now       func() time.Time
}

// New returns a Reconciler scanning every interval.
func New(c client.Client, e Recreator, namespace string, interval time.Duration, logger *slog.Logger) *Reconciler {
	return &Reconciler{temporal: c, entities: e, namespace: namespace, interval: interval, logger: logger, now: time.Now}
}

// Query lists the entities closed since a time: every way a run ends other
// than continue-as-new (the entity then lives on in its next run).
func Query(since time.Time) string {
	return fmt.Sprintf(`WorkflowType = '%s' AND ExecutionStatus IN ('Terminated', 'Failed', 'TimedOut', 'Canceled', 'Completed') AND CloseTime >= '%s'`,
		workflows.EntityWorkflowName, since.UTC().Format(time.RFC3339Nano))
}

// Run scans until ctx ends. Each scan looks back over the two previous
// intervals and a margin (visibility lags a little), so a scan that failed
// is covered by the next one; the first scan looks back a day.
func (r *Reconciler) Run(ctx context.Context) {
	since := r.now().Add(-24 * time.Hour)
	ticker := time.NewTicker(r.interval)
	defer ticker.Stop()
	for {
		started := r.now()
		if n, err := r.Scan(ctx, since); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.logger.WarnContext(ctx, "Reconciliation of closed entities failed; the next scan covers it", "error", err)
		} else {
			if n > 0 {
				r.logger.InfoContext(ctx, "Re-created closed entities", "count", n)
			}
			since = started.Add(-r.interval - time.Minute)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Scan re-creates every entity closed since then that does not run again
// yet; it returns how many it re-created.
func (r *Reconciler) Scan(ctx context.Context, since time.Time) (int, error) {
	recreated := 0
	var token []byte
	for {
		resp, err := r.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: r.namespace, Query: Query(since), PageSize: 1000, NextPageToken: token,
		})
		if err != nil {
			return recreated, fmt.Errorf("list closed entities: %w", err)
		}
		for _, info := range resp.GetExecutions() {
			id := info.GetExecution().GetWorkflowId()
			key, err := entityid.Parse(id)
			if err != nil {
				r.logger.WarnContext(ctx, "Not an entity's workflow ID; skipped", "WorkflowID", id, "error", err)
				continue
			}
			latest, err := r.temporal.DescribeWorkflowExecution(ctx, id, "")
			if err != nil {
				return recreated, fmt.Errorf("describe %s: %w", id, err)
			}
			if latest.GetWorkflowExecutionInfo().GetCloseTime() == nil {
				continue // running again
			}
			if err := r.entities.Recreate(ctx, key); err != nil {
				return recreated, fmt.Errorf("re-create %s: %w", id, err)
			}
			recreated++
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return recreated, nil
		}
	}
}
