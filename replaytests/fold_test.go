package replaytests

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/artifactstate/artifactstate/internal/histories"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
	"github.com/artifactstate/artifactstate/worker"
	"github.com/artifactstate/artifactstate/workflows"
)

// TestFoldAgreesWithReplay checks the one piece of code outside the
// workflow that must apply commands exactly as it does: workflows.Fold,
// which recovers the state of a closed entity from its history. For every
// run of the corpus, the folded state is the state the replayed workflow
// answers to a query, and, where the run continued as new or was
// re-created, the state its next run started with.
func TestFoldAgreesWithReplay(t *testing.T) {
	t.Parallel()
	for _, set := range corpusSets(t) {
		replayer, capture := stateCapturingReplayer(t, set.dc)
		files := map[string]*history.History{}
		for _, file := range set.files {
			h, err := histories.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			files[file] = h
		}
		for _, file := range set.files {
			h := files[file]
			t.Run(set.name+"/"+filepath.Base(file), func(t *testing.T) {
				folded, err := workflows.Fold(h.GetEvents(), set.dc)
				if err != nil {
					t.Fatalf("fold: %v", err)
				}
				if next, ok := files[nextRun(file)]; ok {
					var in workflows.EntityInput
					start := next.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
					if err := set.dc.FromPayloads(start.GetInput(), &in); err != nil {
						t.Fatal(err)
					}
					if continuedAsNew(h) {
						sameState(t, "the next run's input", in.State, folded.State)
					} else {
						// Re-created by the code that recorded it, whose fold
						// may have stamped change times differently.
						sameCounters(t, "the re-created run's input", in.State, folded.State)
					}
					if len(in.Idempotency) != len(folded.Idempotency) {
						t.Errorf("idempotency records: the next run got %d, the fold %d", len(in.Idempotency), len(folded.Idempotency))
					}
				}
				if pendingCommands(h) {
					return // the replay never processed them; the fold must (checked above)
				}
				*capture = nil
				if err := histories.Replay(replayer, logger(), h); err != nil {
					t.Fatalf("replay: %v", err)
				}
				if *capture == nil {
					t.Fatal("the replay registered no getAllStates query handler")
				}
				replayed, err := (*capture)()
				if err != nil {
					t.Fatal(err)
				}
				sameState(t, "the replayed workflow's answer", replayed, folded.State)
			})
		}
	}
}

// corpusSet is a directory of histories and the converter that reads them.
type corpusSet struct {
	name  string
	dc    converter.DataConverter
	files []string
}

func corpusSets(t *testing.T) []corpusSet {
	t.Helper()
	codec, err := payloadcrypt.Load(filepath.Join("testdata", "encrypted", "keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := filepath.Glob(filepath.Join("testdata", "encrypted", "*.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	sets := []corpusSet{
		{"plain", converter.GetDefaultDataConverter(), corpus(t)},
		{"encrypted", payloadcrypt.DataConverter(codec), encrypted},
	}
	for v, files := range productionCorpus(t) {
		sets = append(sets, corpusSet{fmt.Sprintf("production/v%d", v), payloadcrypt.DataConverter(codec), files})
	}
	return sets
}

var runSuffix = regexp.MustCompile(`-run(\d+)\.json\.gz$`)

// nextRun is the file of the run after file's in its chain ("" if none).
func nextRun(file string) string {
	m := runSuffix.FindStringSubmatchIndex(file)
	if m == nil {
		return ""
	}
	n, err := strconv.Atoi(file[m[2]:m[3]])
	if err != nil {
		return ""
	}
	return file[:m[0]] + fmt.Sprintf("-run%d.json.gz", n+1)
}

// pendingCommands reports whether a signalled command arrived after the
// start of the run's last completed workflow task, so that no task
// processed it (a run closed right after it). (An update is accepted by
// the task that processes it.)
func pendingCommands(h *history.History) bool {
	lastSignal, lastStarted, processedUpTo := -1, -1, -1
	for i, ev := range h.GetEvents() {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			lastSignal = i
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			lastStarted = i
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			processedUpTo = lastStarted
		}
	}
	return lastSignal > processedUpTo || !anyCompletedTask(h)
}

func anyCompletedTask(h *history.History) bool {
	for _, ev := range h.GetEvents() {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			return true
		}
	}
	return false
}

func continuedAsNew(h *history.History) bool {
	events := h.GetEvents()
	return events[len(events)-1].GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
}

// sameCounters compares the flags and counters.
func sameCounters(t *testing.T, what string, want, got workflows.State) {
	t.Helper()
	want.ArtifactReadChangedAt, want.ArtifactInUserFeedChangedAt = time.Time{}, time.Time{}
	got.ArtifactReadChangedAt, got.ArtifactInUserFeedChangedAt = time.Time{}, time.Time{}
	if want != got {
		t.Errorf("the fold does not agree with %s:\n fold: %+v\n want: %+v", what, got, want)
	}
}

// sameState compares what the fold must reproduce: the flags, the counters
// and whether each change time is known (the fold stamps a change with its
// event's time, the workflow with its task's).
func sameState(t *testing.T, what string, want, got workflows.State) {
	t.Helper()
	sameCounters(t, what, want, got)
	for _, at := range []struct {
		field     string
		want, got time.Time
	}{
		{"artifactReadChangedAt", want.ArtifactReadChangedAt, got.ArtifactReadChangedAt},
		{"artifactInUserFeedChangedAt", want.ArtifactInUserFeedChangedAt, got.ArtifactInUserFeedChangedAt},
	} {
		switch {
		case at.want.IsZero() != at.got.IsZero():
			t.Errorf("%s: the fold has %v, %s %v", at.field, at.got, what, at.want)
		case at.got.Sub(at.want).Abs() > 10*time.Second:
			t.Errorf("%s: the fold has %v, %s %v", at.field, at.got, what, at.want)
		}
	}
}

// stateCapturingReplayer is a replayer of the production registration that
// keeps the getAllStates query handler the replayed run registers, so the
// test can ask the replayed workflow for its state.
func stateCapturingReplayer(t *testing.T, dc converter.DataConverter) (sdkworker.WorkflowReplayer, *func() (workflows.State, error)) {
	t.Helper()
	capture := new(func() (workflows.State, error))
	r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{
		DataConverter: dc, FailureConverter: payloadcrypt.FailureConverter(dc),
		Interceptors: []interceptor.WorkerInterceptor{&queryCapture{capture: capture}},
	})
	if err != nil {
		t.Fatal(err)
	}
	worker.RegisterWorkflows(r, workflows.Options{})
	return r, capture
}

type queryCapture struct {
	interceptor.WorkerInterceptorBase
	capture *func() (workflows.State, error)
}

func (q *queryCapture) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &queryCaptureInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, capture: q.capture}
}

type queryCaptureInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	capture *func() (workflows.State, error)
}

func (q *queryCaptureInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return q.Next.Init(&queryCaptureOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}, capture: q.capture})
}

type queryCaptureOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	capture *func() (workflows.State, error)
}

func (q *queryCaptureOutbound) SetQueryHandler(ctx workflow.Context, queryType string, handler any) error {
	if queryType == workflows.QueryGetAllStates {
		h, ok := handler.(func() (workflows.State, error))
		if !ok {
			return errors.New("the getAllStates handler changed its type")
		}
		*q.capture = h
	}
	return q.Next.SetQueryHandler(ctx, queryType, handler)
}
