package multiprocess

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/workflows"
)

// The original multi-JVM test, grown up: one Temporal server, three worker
// processes and two api processes. The API contract holds on every node,
// the entities spread over every worker, a worker killed under load loses
// nothing, and a restarted worker gets work again.
func TestThreeWorkersTwoAPINodes(t *testing.T) {
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cassandra, _ := testenv.ReadModel(t, testenv.CassandraHosts(t))
	f := startFleet(t, tt, fleetOptions{Workers: 3, APIs: 2, Identity: "worker",
		Env: []string{
			"ARTIFACTSTATE_CASSANDRA_HOSTS=" + cassandra.Hosts[0],
			"ARTIFACTSTATE_CASSANDRA_KEYSPACE=" + cassandra.Keyspace,
			"ARTIFACTSTATE_CASSANDRA_CONSISTENCY=ONE",
		},
		WorkerEnv: []string{"ARTIFACTSTATE_WORKER_STOP_TIMEOUT=2s"}})
	workers, apis := f.workers, f.apis

	t.Run("original sequence on every api node", func(t *testing.T) {
		for i, api := range apis {
			user := fmt.Sprintf("Mike-%d", i)
			body := pair(1, user)
			answer := func(v bool) string {
				return fmt.Sprintf(`{"answer":%t,"artifactId":1,"userId":"%s"}`, v, user)
			}
			steps := []struct {
				method, path, body, want string
			}{
				{"POST", "/artifactState/setArtifactReadByUser", body, `{"success":true}`},
				{"GET", "/artifactState/isArtifactReadByUser" + query(1, user), "", answer(true)},
				{"POST", "/artifactState/isArtifactReadByUser", body, answer(true)},
				{"POST", "/artifactState/setArtifactAddedToUserFeed", body, `{"success":true}`},
				{"GET", "/artifactState/isArtifactInUserFeed" + query(1, user), "", answer(true)},
				{"POST", "/artifactState/isArtifactInUserFeed", body, answer(true)},
				{"POST", "/artifactState/setArtifactRemovedFromUserFeed", body, `{"success":true}`},
				{"GET", "/artifactState/isArtifactInUserFeed" + query(1, user), "", answer(false)},
				{"GET", "/artifactState/getAllStates" + query(1, user), "", fmt.Sprintf(`{"artifactId":1,"artifactInUserFeed":false,"artifactRead":true,"userId":"%s"}`, user)},
				{"POST", "/artifactState/getAllStates", body, fmt.Sprintf(`{"artifactId":1,"artifactInUserFeed":false,"artifactRead":true,"userId":"%s"}`, user)},
			}
			for _, s := range steps {
				r, err := call(s.method, api.url+s.path, s.body)
				if err != nil || r.status != http.StatusOK || r.body != s.want {
					t.Fatalf("%s %s %s: %d %q (%v), want %q", api.name, s.method, s.path, r.status, r.body, err, s.want)
				}
			}
		}
	})

	c := testenv.Client(t, tt.Config(), "multiprocess-test")
	t.Run("entities spread over every worker", func(t *testing.T) {
		for i := range 60 {
			r, err := call("POST", apis[i%2].url+"/artifactState/setArtifactReadByUser", pair(int64(i), "spread"))
			if err != nil || r.status != http.StatusOK {
				t.Fatalf("write %d: %d %v", i, r.status, err)
			}
		}
		counts := workflowTasksByIdentity(t, c, time.Time{})
		for i := range workers {
			if counts[fmt.Sprintf("worker-%d", i)] == 0 {
				t.Fatalf("worker-%d ran no workflow task: %v", i, counts)
			}
		}
		t.Logf("workflow tasks by worker: %v", counts)
	})

	t.Run("a worker killed under load loses nothing, and rejoins", func(t *testing.T) {
		load := startLoad(t, apis)
		waitFor(t, load, 200)
		workers[1].kill(t)
		t.Log("killed worker-1")
		waitFor(t, load, load.acked()+300)
		restarted := time.Now()
		f.restartWorker(1)
		waitFor(t, load, load.acked()+300)
		load.stop()
		t.Logf("load: %d acknowledged writes, %d retriable failures (503/504), %d other failures",
			load.acked(), load.retriable, len(load.failures))
		for _, f := range load.failures {
			t.Errorf("request failed with a non-retriable answer: %s", f)
		}
		load.verify(t)
		testenv.Eventually(t, time.Minute, func(context.Context) error {
			if n := workflowTasksByIdentity(t, c, restarted)["worker-1"]; n == 0 {
				// Keep some work flowing so the restarted worker can get some.
				for i := range 20 {
					if _, err := call("POST", apis[i%2].url+"/artifactState/setArtifactAddedToUserFeed", pair(int64(1000+i), "rejoin")); err != nil {
						return err
					}
				}
				return fmt.Errorf("the restarted worker-1 has run no workflow task yet")
			}
			return nil
		})
	})
}

// workflowTasksByIdentity counts the workflow tasks each worker identity
// started, over every entity run, after since.
func workflowTasksByIdentity(t *testing.T, c client.Client, since time.Time) map[string]int {
	t.Helper()
	ctx := context.Background()
	counts := map[string]int{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: testenv.Namespace, Query: fmt.Sprintf("WorkflowType = %q", workflows.EntityWorkflowName), NextPageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			it := c.GetWorkflowHistory(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatal(err)
				}
				if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED && ev.GetEventTime().AsTime().After(since) {
					counts[ev.GetWorkflowTaskStartedEventAttributes().GetIdentity()]++
				}
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return counts
		}
	}
}

// load is a steady stream of writes through both api nodes: each writer
// owns its pairs, so the expected final state of every pair is exact.
type load struct {
	apis      []*process
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	ackedN    int
	retriable int
	failures  []string
	expected  map[string]*pairState
}

type pairState struct {
	artifact int64
	user     string
	read     bool
	inFeed   bool
}

func startLoad(t *testing.T, apis []*process) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{apis: apis, cancel: cancel, expected: map[string]*pairState{}}
	for w := range 6 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for n := 0; ctx.Err() == nil; n++ {
				p := &pairState{artifact: int64(rng.IntN(40)), user: fmt.Sprintf("load-%d", w)}
				kind := workflows.CommandKinds[rng.IntN(len(workflows.CommandKinds))]
				l.write(p, kind, apis[n%len(apis)])
			}
		}()
	}
	return l
}

// write sends one command until it is acknowledged: a 503 or 504 may or may
// not have landed, and every command is idempotent, so the retry is safe.
func (l *load) write(p *pairState, kind workflows.CommandKind, api *process) {
	key := fmt.Sprintf("%d/%s", p.artifact, p.user)
	for attempt := 0; ; attempt++ {
		r, err := call("POST", api.url+"/artifactState/"+string(kind), pair(p.artifact, p.user))
		l.mu.Lock()
		if err == nil && r.status == http.StatusOK && r.body == `{"success":true}` {
			l.ackedN++
			s := l.expected[key]
			if s == nil {
				s = p
				l.expected[key] = s
			}
			switch kind {
			case workflows.SetArtifactReadByUser:
				s.read = true
			case workflows.SetArtifactAddedToUserFeed:
				s.inFeed = true
			case workflows.SetArtifactRemovedFromUserFeed:
				s.inFeed = false
			}
			l.mu.Unlock()
			return
		}
		if err == nil && (r.status == http.StatusServiceUnavailable || r.status == http.StatusGatewayTimeout) && attempt < 20 {
			l.retriable++
			l.mu.Unlock()
			continue
		}
		l.failures = append(l.failures, fmt.Sprintf("%s %s: %d %q %v", kind, key, r.status, r.body, err))
		delete(l.expected, key) // its state is unknown now
		l.mu.Unlock()
		return
	}
}

func (l *load) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ackedN
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

func waitFor(t *testing.T, l *load, n int) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, func(context.Context) error {
		if got := l.acked(); got < n {
			return fmt.Errorf("%d of %d writes acknowledged", got, n)
		}
		return nil
	})
}

// verify reads every written pair through both api nodes.
func (l *load) verify(t *testing.T) {
	t.Helper()
	for _, s := range l.expected {
		want := fmt.Sprintf(`{"artifactId":%d,"artifactInUserFeed":%t,"artifactRead":%t,"userId":"%s"}`, s.artifact, s.inFeed, s.read, s.user)
		for _, api := range l.apis {
			testenv.Eventually(t, time.Minute, func(context.Context) error {
				r, err := call("GET", api.url+"/artifactState/getAllStates"+query(s.artifact, s.user), "")
				if err != nil {
					return err
				}
				if r.status == http.StatusServiceUnavailable || r.status == http.StatusGatewayTimeout {
					return fmt.Errorf("retriable %d", r.status)
				}
				if r.body != want {
					t.Fatalf("%s: pair (%d, %s) is %s, want %s", api.name, s.artifact, s.user, r.body, want)
				}
				return nil
			})
		}
	}
}
