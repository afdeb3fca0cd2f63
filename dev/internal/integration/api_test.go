package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/artifactstate/artifactstate/dev/internal/testenv"
	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// The original multi-JVM spec's HTTP sequence, byte for byte.
func TestOriginalSpecSequence(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	mike := pairBody(1, "Mike")
	steps := []struct {
		name string
		do   func() response
		want string
	}{
		{"set read", func() response { return s.post(t, "/artifactState/setArtifactReadByUser", mike) }, `{"success":true}`},
		{"is read (GET)", func() response { return s.get(t, "/artifactState/isArtifactReadByUser", 1, "Mike") }, `{"answer":true,"artifactId":1,"userId":"Mike"}`},
		{"is read (POST)", func() response { return s.post(t, "/artifactState/isArtifactReadByUser", mike) }, `{"answer":true,"artifactId":1,"userId":"Mike"}`},
		{"add to feed", func() response { return s.post(t, "/artifactState/setArtifactAddedToUserFeed", mike) }, `{"success":true}`},
		{"in feed (GET)", func() response { return s.get(t, "/artifactState/isArtifactInUserFeed", 1, "Mike") }, `{"answer":true,"artifactId":1,"userId":"Mike"}`},
		{"in feed (POST)", func() response { return s.post(t, "/artifactState/isArtifactInUserFeed", mike) }, `{"answer":true,"artifactId":1,"userId":"Mike"}`},
		{"remove from feed", func() response { return s.post(t, "/artifactState/setArtifactRemovedFromUserFeed", mike) }, `{"success":true}`},
		{"not in feed (GET)", func() response { return s.get(t, "/artifactState/isArtifactInUserFeed", 1, "Mike") }, `{"answer":false,"artifactId":1,"userId":"Mike"}`},
		{"all states (GET)", func() response { return s.get(t, "/artifactState/getAllStates", 1, "Mike") }, `{"artifactId":1,"artifactInUserFeed":false,"artifactRead":true,"userId":"Mike"}`},
		{"all states (POST)", func() response { return s.post(t, "/artifactState/getAllStates", mike) }, `{"artifactId":1,"artifactInUserFeed":false,"artifactRead":true,"userId":"Mike"}`},
	}
	for _, step := range steps {
		r := step.do()
		require.Equal(t, http.StatusOK, r.status, step.name)
		require.Equal(t, "application/json", r.header.Get("Content-Type"), step.name)
		require.Equal(t, step.want, r.body, step.name)
	}
	// (1, "1Mike") is another entity than (11, "Mike") — and than (1, "Mike").
	require.Equal(t, `{"artifactId":11,"artifactInUserFeed":false,"artifactRead":false,"userId":"Mike"}`,
		s.get(t, "/artifactState/getAllStates", 11, "Mike").body)
	require.Equal(t, `{"artifactId":1,"artifactInUserFeed":false,"artifactRead":false,"userId":"1Mike"}`,
		s.get(t, "/artifactState/getAllStates", 1, "1Mike").body)
}

// User IDs with quotes, slashes, backslashes and non-Latin letters round-trip
// exactly, through JSON bodies and query strings alike.
func TestUnusualUserIDsRoundTrip(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	for i, userID := range []string{`Łukasz "the <b>" O'Brien`, `a/b\c/../d`, "山田太郎", "👩‍💻 + & = ?#", " lead and trail "} {
		id := int64(100 + i)
		require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactAddedToUserFeed", pairBody(id, userID)).body)
		want := `{"answer":true,"artifactId":` + fmt.Sprint(id) + `,"userId":` + jsonString(userID) + `}`
		require.Equal(t, want, s.get(t, "/artifactState/isArtifactInUserFeed", id, userID).body, userID)
		require.Equal(t, want, s.post(t, "/artifactState/isArtifactInUserFeed", pairBody(id, userID)).body, userID)
		var wf workflows.State
		v, err := s.client.QueryWorkflow(context.Background(), entityid.Key{UserID: userID, ArtifactID: id}.WorkflowID(), "", workflows.QueryGetAllStates)
		require.NoError(t, err, "the entity lives under the documented workflow ID")
		require.NoError(t, v.Get(&wf))
		require.True(t, wf.ArtifactInUserFeed)
	}
}

// jsonString is how the original (spray-json) wrote a string: no HTML escaping.
func jsonString(s string) string {
	out := []byte{'"'}
	for _, r := range s {
		switch r {
		case '"':
			out = append(out, '\\', '"')
		case '\\':
			out = append(out, '\\', '\\')
		default:
			out = append(out, string(r)...)
		}
	}
	return string(append(out, '"'))
}

func TestNeverWrittenPairAnswersFalseWithoutAWorkflow(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	require.Equal(t, `{"artifactId":7,"artifactInUserFeed":false,"artifactRead":false,"userId":"Nobody"}`,
		s.get(t, "/artifactState/getAllStates", 7, "Nobody").body)
	require.Equal(t, `{"answer":false,"artifactId":7,"userId":"Nobody"}`, s.get(t, "/artifactState/isArtifactReadByUser", 7, "Nobody").body)
	require.Equal(t, `{"answer":false,"artifactId":7,"userId":"Nobody"}`, s.post(t, "/artifactState/isArtifactInUserFeed", pairBody(7, "Nobody")).body)
	_, err := s.client.DescribeWorkflowExecution(context.Background(), entityid.Key{UserID: "Nobody", ArtifactID: 7}.WorkflowID(), "")
	var notFound *serviceerror.NotFound
	require.True(t, errors.As(err, &notFound), "reads must not create a workflow, got %v", err)
}

// Every write acknowledged is visible to the next read: 200 new pairs, 32
// clients at once (the load the Akka PoC passes), four writes each.
func TestReadYourWritesOnConcurrentPairs(t *testing.T) {
	t.Parallel()
	// This checks consistency, not latency: on two busy cores calls may
	// queue for seconds.
	s := startStack(t, func(c *config.Config) { c.API.RequestTimeout = time.Minute })
	commands := []workflows.CommandKind{workflows.SetArtifactReadByUser, workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed}
	pairs := make(chan int, 200)
	for p := range 200 {
		pairs <- p
	}
	close(pairs)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range pairs {
				if err := readYourWrites(s, p, commands); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// readYourWrites writes pair p four times, reading it back after each.
func readYourWrites(s *stack, p int, commands []workflows.CommandKind) error {
	user := fmt.Sprintf("user-%d", p)
	var model workflows.State
	rng := rand.New(rand.NewPCG(uint64(p), 42))
	for range 4 {
		kind := commands[rng.IntN(len(commands))]
		if r, err := try(http.MethodPost, s.api.URL+"/artifactState/"+string(kind), pairBody(int64(p), user)); err != nil || r.body != `{"success":true}` {
			return fmt.Errorf("%s %s: %d %s %v", user, kind, r.status, r.body, err)
		}
		applyModel(&model, kind)
		want := fmt.Sprintf(`{"artifactId":%d,"artifactInUserFeed":%t,"artifactRead":%t,"userId":"%s"}`, p, model.ArtifactInUserFeed, model.ArtifactRead, user)
		if r, err := try(http.MethodGet, s.getURL("/artifactState/getAllStates", int64(p), user), ""); err != nil || r.body != want {
			return fmt.Errorf("%s after %s: got %d %s %v, want %s", user, kind, r.status, r.body, err, want)
		}
	}
	return nil
}

func applyModel(m *workflows.State, kind workflows.CommandKind) {
	switch kind {
	case workflows.SetArtifactReadByUser:
		m.ArtifactRead = true
	case workflows.SetArtifactAddedToUserFeed:
		m.ArtifactInUserFeed = true
	case workflows.SetArtifactRemovedFromUserFeed:
		m.ArtifactInUserFeed = false
	}
}

// One entity driven through many continue-as-new runs, by sequential and by
// concurrent writers, keeps the right state and applies every command once.
func TestEntityAcrossManyRuns(t *testing.T) {
	t.Parallel()
	s := startStack(t, func(c *config.Config) { c.Worker.MaxHistoryEvents = 100 })
	key := entityid.Key{UserID: "busy", ArtifactID: 1}
	body := pairBody(key.ArtifactID, key.UserID)
	var model workflows.State
	for i := range 60 {
		kind := []workflows.CommandKind{workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed, workflows.SetArtifactReadByUser}[i%3]
		require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/"+string(kind), body).body)
		applyModel(&model, kind)
	}
	// Concurrent writers race the continue-as-new hand-overs.
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if r, err := try(http.MethodPost, s.api.URL+"/artifactState/setArtifactAddedToUserFeed", body); err != nil || r.body != `{"success":true}` {
					t.Errorf("write failed: %d %s %v", r.status, r.body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	model.ArtifactInUserFeed = true

	v, err := s.client.QueryWorkflow(context.Background(), key.WorkflowID(), "", workflows.QueryGetAllStates)
	require.NoError(t, err)
	var st workflows.State
	require.NoError(t, v.Get(&st))
	require.Equal(t, model.ArtifactRead, st.ArtifactRead)
	require.Equal(t, model.ArtifactInUserFeed, st.ArtifactInUserFeed)
	require.Equal(t, uint64(60+writers*each), st.CommandsApplied, "every acknowledged command applied exactly once")
	// Each acknowledged write is its own update, at least five events (its
	// workflow task and the update's acceptance and completion), whatever the
	// scheduling: the first 60 alone are 300 events, so a budget of 100
	// events forces at least three runs.
	require.GreaterOrEqual(t, st.Run, uint64(3), "the budget of 100 events forces several runs")
	require.Equal(t, `{"artifactId":1,"artifactInUserFeed":true,"artifactRead":true,"userId":"busy"}`,
		s.get(t, "/artifactState/getAllStates", 1, "busy").body)

	// Every closed run ended in a continue-as-new, and exactly one is open.
	runs, open := 0, 0
	resp, err := s.client.ListWorkflow(context.Background(), listRequest(key))
	require.NoError(t, err)
	for _, e := range resp.Executions {
		runs++
		switch e.Status {
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			open++
		case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		default:
			t.Errorf("run %s ended %v", e.Execution.RunId, e.Status)
		}
	}
	require.Equal(t, 1, open)
	t.Logf("%d commands over %d runs (visibility lists %d)", st.CommandsApplied, st.Run, runs)
}

// Commands signalled while no worker runs (the write path before history
// version 3, still served) are applied in the order they were accepted,
// although one workflow task then delivers them all at once.
func TestQueuedCommandsKeepTheirOrder(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{})
	cfg := tt.Config()
	c := testenv.Client(t, cfg, "order-test")
	api := testenv.StartAPI(t, c, cfg, nil)
	s := &stack{temporal: tt, cfg: cfg, client: c, api: api}
	for id, seq := range map[int64][]workflows.CommandKind{
		1: {workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed},
		2: {workflows.SetArtifactRemovedFromUserFeed, workflows.SetArtifactAddedToUserFeed},
		3: {workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed, workflows.SetArtifactReadByUser, workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed},
	} {
		k := entityid.Key{UserID: "queued", ArtifactID: id}
		for _, kind := range seq {
			_, err := c.SignalWithStartWorkflow(context.Background(), k.WorkflowID(), workflows.CommandSignalName, workflows.Command{Kind: kind},
				startOptions(cfg, k), workflows.EntityWorkflowName, workflows.EntityInput{UserID: k.UserID, ArtifactID: k.ArtifactID})
			require.NoError(t, err)
		}
	}
	testenv.StartWorker(t, c, cfg, nil)
	require.Equal(t, `{"answer":false,"artifactId":1,"userId":"queued"}`, s.get(t, "/artifactState/isArtifactInUserFeed", 1, "queued").body)
	require.Equal(t, `{"answer":true,"artifactId":2,"userId":"queued"}`, s.get(t, "/artifactState/isArtifactInUserFeed", 2, "queued").body)
	require.Equal(t, `{"artifactId":3,"artifactInUserFeed":false,"artifactRead":true,"userId":"queued"}`, s.get(t, "/artifactState/getAllStates", 3, "queued").body)
}

// An entity closed by an operator is re-created from its last state by the
// next write.
func TestTerminatedEntityIsRecreatedWithItsState(t *testing.T) {
	t.Parallel()
	s := startStack(t, nil)
	key := entityid.Key{UserID: "Mike", ArtifactID: 5}
	body := pairBody(5, "Mike")
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactReadByUser", body).body)
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactAddedToUserFeed", body).body)
	require.NoError(t, s.client.TerminateWorkflow(context.Background(), key.WorkflowID(), "", "operator closed it"))
	// Reads of the closed entity still answer its last state.
	require.Equal(t, `{"artifactId":5,"artifactInUserFeed":true,"artifactRead":true,"userId":"Mike"}`, s.get(t, "/artifactState/getAllStates", 5, "Mike").body)

	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactRemovedFromUserFeed", body).body)
	require.Equal(t, `{"artifactId":5,"artifactInUserFeed":false,"artifactRead":true,"userId":"Mike"}`, s.get(t, "/artifactState/getAllStates", 5, "Mike").body)
	v, err := s.client.QueryWorkflow(context.Background(), key.WorkflowID(), "", workflows.QueryGetAllStates)
	require.NoError(t, err)
	var st workflows.State
	require.NoError(t, v.Get(&st))
	require.False(t, st.ArtifactReadChangedAt.IsZero(), "the read time survives the re-creation")
	st.ArtifactReadChangedAt, st.ArtifactInUserFeedChangedAt = time.Time{}, time.Time{}
	require.Equal(t, workflows.State{ArtifactRead: true, Version: 3, CommandsApplied: 3, Run: 2}, st)
}

// With Temporal down the API answers 503 with Retry-After (never a false
// success), and it recovers by itself when Temporal is back.
func TestTemporalOutageGives503ThenRecovers(t *testing.T) {
	t.Parallel()
	tt := testenv.StartTemporal(t, testenv.TemporalOptions{Persistent: true})
	s := startStackOn(t, tt, func(c *config.Config) { c.API.RequestTimeout = 2 * time.Second })
	body := pairBody(9, "Mike")
	require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactReadByUser", body).body)
	require.Equal(t, http.StatusOK, do(t, http.MethodGet, s.api.URL+"/readyz", "").status)

	s.temporal.Stop()
	for _, r := range []response{
		s.post(t, "/artifactState/setArtifactAddedToUserFeed", body),
		s.get(t, "/artifactState/getAllStates", 9, "Mike"),
		do(t, http.MethodGet, s.api.URL+"/readyz", ""),
	} {
		require.Equal(t, http.StatusServiceUnavailable, r.status, r.body)
		require.Equal(t, "1", r.header.Get("Retry-After"))
		require.Contains(t, r.body, `"code":"unavailable"`)
	}
	require.Equal(t, http.StatusOK, do(t, http.MethodGet, s.api.URL+"/healthz", "").status, "the process itself is fine")

	s.temporal.Start()
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		if r := s.post(t, "/artifactState/setArtifactAddedToUserFeed", body); r.status != http.StatusOK {
			return fmt.Errorf("write: %d %s", r.status, r.body)
		}
		return nil
	})
	// Reads need the worker, whose pollers reconnect with a back-off.
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		const want = `{"artifactId":9,"artifactInUserFeed":true,"artifactRead":true,"userId":"Mike"}`
		if r := s.get(t, "/artifactState/getAllStates", 9, "Mike"); r.body != want {
			return fmt.Errorf("read: %d %s", r.status, r.body)
		}
		return nil
	})
	require.Equal(t, http.StatusOK, do(t, http.MethodGet, s.api.URL+"/readyz", "").status)
}

// Past api.maxInFlightTemporalCalls and its queue, a call is refused at
// once with 503 + Retry-After (never sent, never a 504 after waiting), the
// queued ones are served, and the API serves normally once the burst ends.
func TestABurstPastTheAdmissionBoundIsRefusedWithRetryAfter(t *testing.T) {
	t.Parallel()
	s := startStack(t, func(c *config.Config) {
		c.API.MaxInFlightTemporalCalls, c.API.MaxQueuedTemporalCalls, c.API.FanoutConcurrency = 1, 2, 1
	})
	const callers = 32
	start := make(chan struct{})
	answers := make(chan response, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			r, err := try(http.MethodPost, s.api.URL+"/artifactState/setArtifactAddedToUserFeed", pairBody(int64(i), "burst"))
			if err != nil {
				r = response{body: err.Error()}
			}
			answers <- r
		})
	}
	close(start)
	wg.Wait()
	close(answers)
	var ok, refused int
	for r := range answers {
		switch {
		case r.status == http.StatusOK && r.body == `{"success":true}`:
			ok++
		case r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") == "1" && strings.Contains(r.body, `"code":"unavailable"`):
			refused++
		default:
			t.Errorf("answer %d %q: want 200 or 503 with Retry-After", r.status, r.body)
		}
	}
	t.Logf("%d served, %d refused", ok, refused)
	require.Positive(t, refused, "32 callers at once past a bound of 1 in flight and 2 queued: some must be refused")
	require.GreaterOrEqual(t, ok, 3, "the call in flight and the queued ones are served")
	for i := range 5 {
		require.Equal(t, `{"success":true}`, s.post(t, "/artifactState/setArtifactReadByUser", pairBody(int64(i), "burst")).body, "after the burst")
	}
}
