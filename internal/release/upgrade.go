package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"golang.org/x/time/rate"

	"github.com/artifactstate/artifactstate/workflows"
)

// UpgradeOptions tune Upgrade.
type UpgradeOptions struct {
	Namespace string
	// Rate bounds the upgrade requests per second (each starts a new run: a
	// few history and visibility writes).
	Rate float64
	// CursorFile keeps the listing's position across invocations: an
	// interrupted upgrade started again with the same file resumes after the
	// last page it finished. Empty: no cursor.
	CursorFile string
	// DryRun counts the entities it would move, and moves none.
	DryRun bool
	// Reason is logged by each entity.
	Reason string
	// Progress, when set, is called after every page.
	Progress func(UpgradeProgress)
}

// UpgradeProgress counts an upgrade's work.
type UpgradeProgress struct {
	// Remaining is how many entities were pinned to other builds when the
	// upgrade (or the pass) began.
	Remaining int64
	// Asked entities were asked to move; Gone had closed or moved on their
	// own before the request reached them.
	Asked, Gone int64
	Elapsed     time.Duration
}

// Upgrade moves every running entity pinned to a build that takes no new
// runs (neither current nor ramping) onto the builds that do: it asks each
// run (the update workflows.UpgradeUpdateName) to continue as new, and the
// new run
// starts on the current version. An entity with commands moves by itself
// (its next task after a new version became current continues as new);
// this is for idle ones, which no task would ever move, and for draining an
// old build before its workers stop, or a rolled-back one.
//
// The listing only ever holds entities that have not moved, so an upgrade
// started again resumes; the cursor file lets it skip the pages a previous
// invocation finished. Each request names the listed run, so a run that
// moved meanwhile is not disturbed again.
func (d *Deployment) Upgrade(ctx context.Context, opts UpgradeOptions) (UpgradeProgress, error) {
	var p UpgradeProgress
	routing, _, ok, err := d.Describe(ctx)
	if err != nil {
		return p, err
	}
	if !ok {
		return p, fmt.Errorf("worker deployment %s has no versions yet: no versioned worker has polled", d.name)
	}
	query := PinnedElsewhereQuery(d.name, routing.Current, routing.Ramping)
	count, err := d.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: opts.Namespace, Query: query})
	if err != nil {
		return p, fmt.Errorf("count the entities to move: %w", err)
	}
	p.Remaining = count.GetCount()
	if opts.DryRun || p.Remaining == 0 {
		return p, nil
	}
	token, err := readCursor(opts.CursorFile)
	if err != nil {
		return p, err
	}
	limiter := rate.NewLimiter(rate.Limit(opts.Rate), 1)
	start := time.Now()
	for {
		page, err := d.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: opts.Namespace, Query: query, NextPageToken: token, PageSize: 500,
		})
		if err != nil {
			return p, fmt.Errorf("list the entities to move: %w", err)
		}
		for _, e := range page.GetExecutions() {
			if err := limiter.Wait(ctx); err != nil {
				return p, err
			}
			run := e.GetExecution()
			_, err := d.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: run.GetWorkflowId(), RunID: run.GetRunId(), UpdateName: workflows.UpgradeUpdateName,
				Args: []any{workflows.UpgradeRequest{Reason: opts.Reason}}, WaitForStage: client.WorkflowUpdateStageAccepted,
			})
			var notFound *serviceerror.NotFound
			switch {
			case errors.As(err, &notFound):
				p.Gone++ // that run closed: it moved, or an operator closed it
			case err != nil:
				return p, fmt.Errorf("ask %s to move: %w", run.GetWorkflowId(), err)
			default:
				p.Asked++
			}
		}
		token = page.GetNextPageToken()
		if err := writeCursor(opts.CursorFile, token); err != nil {
			return p, err
		}
		p.Elapsed = time.Since(start)
		if opts.Progress != nil {
			opts.Progress(p)
		}
		if len(token) == 0 {
			return p, nil
		}
	}
}

// PinnedElsewhereQuery lists the running entities pinned to a build of the
// deployment that takes no new runs: neither the current build ("":
// unversioned workers are current) nor the ramping one ("": none), whose
// entities are where new runs go anyway (moving them during a ramp would
// only churn).
func PinnedElsewhereQuery(deployment, current, ramping string) string {
	q := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND TemporalWorkerDeployment = '%s' AND TemporalWorkflowVersioningBehavior = 'Pinned'",
		workflows.EntityWorkflowName, deployment)
	for _, build := range []string{current, ramping} {
		if build != "" {
			q += fmt.Sprintf(" AND TemporalWorkerDeploymentVersion != '%s'", VersionString(deployment, build))
		}
	}
	return q
}

// PinnedToQuery lists the running entities pinned to buildID.
func PinnedToQuery(deployment, buildID string) string {
	return fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND TemporalWorkerDeploymentVersion = '%s'",
		workflows.EntityWorkflowName, VersionString(deployment, buildID))
}

// VersionString is a version as Temporal's search attributes spell it.
func VersionString(deployment, buildID string) string { return deployment + ":" + buildID }

func readCursor(file string) ([]byte, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the upgrade cursor: %w", err)
	}
	return b, nil
}

// writeCursor saves the position after a finished page; an upgrade that
// finished removes it, so the next one starts from the beginning.
func writeCursor(file string, token []byte) error {
	if file == "" {
		return nil
	}
	if len(token) == 0 {
		if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the upgrade cursor: %w", err)
		}
		return nil
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, token, 0o600); err != nil {
		return fmt.Errorf("save the upgrade cursor: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("save the upgrade cursor: %w", err)
	}
	return nil
}
