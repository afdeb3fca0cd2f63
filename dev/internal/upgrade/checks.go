package upgrade

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/internal/entityid"
)

// ReadModelFault makes the read model refuse projections for a while, as a
// broken schema does (a column the projection writes is dropped): the
// projection activity reports a rejection, which it does not retry, and
// the entity pauses its projection.
type ReadModelFault struct {
	Hosts    []string
	Keyspace string
}

// Reject drops the column; restore adds it back.
func (f *ReadModelFault) Reject(ctx context.Context) (restore func(context.Context) error, err error) {
	cluster := gocql.NewCluster(f.Hosts...)
	cluster.Timeout = 30 * time.Second
	session, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("read model fault: %w", err)
	}
	table := f.Keyspace + ".artifact_state"
	if err := session.Query("ALTER TABLE " + table + " DROP changed_at").ExecContext(ctx); err != nil {
		session.Close()
		return nil, fmt.Errorf("read model fault: drop a column: %w", err)
	}
	return func(ctx context.Context) error {
		defer session.Close()
		if err := session.Query("ALTER TABLE " + table + " ADD changed_at timestamp").ExecContext(ctx); err != nil {
			return fmt.Errorf("read model fault: restore the column: %w", err)
		}
		return nil
	}, nil
}

// waitRejected waits until the entity's history shows its projection
// rejected (a local activity marker with a failure, or a failed activity).
func waitRejected(ctx context.Context, c client.Client, key entityid.Key) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		events, err := runEvents(ctx, c, key, "")
		if err != nil {
			return err
		}
		for _, ev := range events {
			marker := ev.GetMarkerRecordedEventAttributes()
			if marker.GetMarkerName() == "LocalActivity" && marker.GetFailure() != nil ||
				ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: no rejected projection in its history: %w", key, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runEvents is one run's history ("": the current run).
func runEvents(ctx context.Context, c client.Client, key entityid.Key, runID string) ([]*historypb.HistoryEvent, error) {
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, key.WorkflowID(), runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", key, err)
		}
		events = append(events, ev)
	}
	return events, nil
}

// NoFailedTasks checks every run of every entity (each chain, and each
// closed run listed for the ID) for a failed workflow task: a build that
// could not replay a history fails its task (TMPRL1100) before anything
// else shows it.
func NoFailedTasks(ctx context.Context, c client.Client, keys []entityid.Key) error {
	var errs []error
	for _, key := range keys {
		runIDs, err := allRunIDs(ctx, c, key)
		if err != nil {
			return err
		}
		for _, runID := range runIDs {
			events, err := runEvents(ctx, c, key, runID)
			if err != nil {
				return err
			}
			for _, ev := range events {
				if a := ev.GetWorkflowTaskFailedEventAttributes(); a != nil {
					errs = append(errs, fmt.Errorf("%s run %s: failed workflow task (%s): %s", key, runID,
						a.GetCause(), firstLine(a.GetFailure().GetMessage())))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func listRequest(key entityid.Key, token []byte) *workflowservice.ListWorkflowExecutionsRequest {
	id := strings.ReplaceAll(key.WorkflowID(), `'`, `\'`)
	return &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: "WorkflowId = '" + id + "'", NextPageToken: token}
}

// allRunIDs lists every run of the workflow ID, open and closed: the runs
// visibility lists for the ID, and the chain of the current run followed
// back through its continue-as-new links (visibility matches no ID that
// holds a double quote).
func allRunIDs(ctx context.Context, c client.Client, key entityid.Key) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	addRun := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, listRequest(key, token))
		if err != nil {
			return nil, fmt.Errorf("list the runs of %s: %w", key, err)
		}
		for _, e := range resp.GetExecutions() {
			addRun(e.GetExecution().GetRunId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	runID := ""
	for {
		events, err := runEvents(ctx, c, key, runID)
		if err != nil {
			return nil, err
		}
		start := events[0].GetWorkflowExecutionStartedEventAttributes()
		if runID == "" {
			desc, err := c.DescribeWorkflowExecution(ctx, key.WorkflowID(), "")
			if err != nil {
				return nil, err
			}
			runID = desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		}
		addRun(runID)
		if runID = start.GetContinuedExecutionRunId(); runID == "" {
			return ids, nil
		}
	}
}

// NoNondeterminism checks the processes' logs for the SDK's
// nondeterminism error.
func NoNondeterminism(procs []*Proc) error {
	var errs []error
	for _, p := range procs {
		for _, line := range strings.Split(p.Log(), "\n") {
			if strings.Contains(line, "TMPRL1100") {
				errs = append(errs, fmt.Errorf("%s logged: %s", p.Name, firstLine(line)))
				break
			}
		}
	}
	return errors.Join(errs...)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}
