package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/artifactstate/artifactstate/internal/entities"
	"github.com/artifactstate/artifactstate/workflows"
)

var gatlingCalls = []string{CallSetRead, CallIsRead, CallAddToFeed, CallIsInFeed, CallRemoveFromFeed, CallGetAllStates}

func runGatling(t *testing.T, c *Client, users int, ramp time.Duration, seed uint64) *Report {
	t.Helper()
	g := &Gatling{Client: c, Rand: rand.New(rand.NewPCG(seed, 1))}
	rep := RunRamp(context.Background(), users, ramp, g.User)
	rep.Scenario = "gatling"
	rep.Target = c.Target()
	rep.Params = map[string]string{"users": fmt.Sprint(users), "ramp": ramp.String(), "seed": fmt.Sprint(seed)}
	return rep
}

func TestGatlingScenarioAgainstTheRouter(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, newMemoryEntities(), nil)
	c := newClient(t, srv, 64)
	started := time.Now()
	rep := runGatling(t, c, 50, time.Second, 1)
	elapsed := time.Since(started)
	require.GreaterOrEqual(t, elapsed, 980*time.Millisecond, "the last user starts at 49/50 of the ramp")
	require.Zero(t, rep.Total.Errors, "%+v", rep.Total.ErrorsByMessage)
	require.Equal(t, 300, rep.Total.Count)
	var names []string
	for _, call := range rep.Calls {
		names = append(names, call.Call)
		require.Equal(t, 50, call.Count, call.Call)
		require.Equal(t, 50, call.OK, call.Call)
		require.Positive(t, call.Latency.P50, call.Call)
		require.LessOrEqual(t, call.Latency.P50, call.Latency.P99, call.Call)
		require.NotEmpty(t, call.Timeline, call.Call)
	}
	require.Equal(t, gatlingCalls, names, "the scenario's calls, in its order")
	// The measured window ends with the last call: after the last user
	// started (0.98 s), before the run returned.
	require.GreaterOrEqual(t, rep.Total.Throughput, 300/elapsed.Seconds())
	require.LessOrEqual(t, rep.Total.Throughput, 300/0.98)

	rep.Verification = Verify(context.Background(), c, c.Ledger, VerifyOptions{AssumeFresh: true})
	v := rep.Verification
	require.Equal(t, CheckOK, v.API.Status, "%+v", v.API)
	require.Equal(t, CheckNotConfigured, v.ReadModel.Status)
	require.Equal(t, 150, v.AcknowledgedWrites)
	require.LessOrEqual(t, v.Pairs, 50)
	require.Equal(t, v.Pairs, v.API.Checked)
	require.False(t, rep.Failed())

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	t.Log("\n" + text.String())
	for _, call := range gatlingCalls {
		require.Contains(t, text.String(), call)
	}
	require.Contains(t, text.String(), "verification: OK")
	require.Contains(t, text.String(), "read model (eventual): not configured")
}

func TestReadModelCheckPollsUntilConverged(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	rm := &memoryReadModel{entities: m}
	srv := startAPI(t, m, rm)
	c := newClient(t, srv, 16)
	rep := runGatling(t, c, 20, 0, 2)
	require.Zero(t, rep.Total.Errors)
	rm.stale.Store(25) // the first round of reads (and then some) finds nothing projected
	v := Verify(context.Background(), c, c.Ledger, VerifyOptions{PollInterval: 10 * time.Millisecond, AssumeFresh: true})
	require.Equal(t, CheckOK, v.API.Status, "%+v", v.API)
	require.Equal(t, CheckOK, v.ReadModel.Status, "%+v", v.ReadModel)
	require.Equal(t, v.Pairs, v.ReadModel.Checked)
	require.Positive(t, v.ReadModel.ConvergedAfterSeconds)
	require.Negative(t, rm.stale.Load(), "the stale reads were used up")
}

func TestVerificationCatchesALostWrite(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	m.loseRead = true
	srv := startAPI(t, m, &memoryReadModel{entities: m})
	c := newClient(t, srv, 16)
	rep := runGatling(t, c, 20, 0, 3)
	lost := m.lost()
	require.NotEmpty(t, lost.UserID)
	// The scenario's own reads saw it: the user's reads said "not read"
	// right after the write was acknowledged.
	require.Positive(t, rep.Call(CallIsRead).ErrorsByMessage[ErrReadYourWrites.Error()])
	require.Positive(t, rep.Total.NonRetriable)

	rep.Verification = Verify(context.Background(), c, c.Ledger, VerifyOptions{ConvergeTimeout: time.Second, PollInterval: 10 * time.Millisecond})
	v := rep.Verification
	require.True(t, v.Failed())
	require.Equal(t, CheckFailed, v.API.Status)
	require.Equal(t, 1, v.API.Mismatches)
	require.Equal(t, []Mismatch{{UserID: lost.UserID, ArtifactID: lost.ArtifactID, Want: "read=true inFeed=false", Got: "read=false inFeed=false"}}, v.API.Examples)
	// The read model agrees with the entity, which is wrong: still caught.
	require.Equal(t, CheckFailed, v.ReadModel.Status)
	require.Equal(t, 1, v.ReadModel.Mismatches)

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "verification: FAILED")
	require.Contains(t, text.String(), fmt.Sprintf("(%q, %d): want read=true inFeed=false, got read=false inFeed=false", lost.UserID, lost.ArtifactID))
}

func TestReadModelThatDoesNotConvergeFails(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	rm := &memoryReadModel{entities: m}
	srv := startAPI(t, m, rm)
	c := newClient(t, srv, 16)
	rep := runGatling(t, c, 10, 0, 4)
	require.Zero(t, rep.Total.Errors)
	exps := c.Ledger.Expectations(false)
	rm.never = map[Pair]bool{exps[0].Pair: true}
	v := Verify(context.Background(), c, c.Ledger, VerifyOptions{ConvergeTimeout: 200 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	require.Equal(t, CheckOK, v.API.Status)
	require.Equal(t, CheckFailed, v.ReadModel.Status)
	require.Equal(t, 1, v.ReadModel.Mismatches)
	require.Equal(t, exps[0].Pair.UserID, v.ReadModel.Examples[0].UserID)
	require.Equal(t, "read=false inFeed=false", v.ReadModel.Examples[0].Got)
	require.Contains(t, v.ReadModel.Detail, "did not converge within 200ms")
}

func TestOpenModelCountsDroppedArrivals(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	gate := make(chan struct{}) // reads hang until every arrival was made
	m.HoldReads(gate)
	srv := startAPI(t, m, nil)
	c := newClient(t, srv, 4)
	const arrivals = 100
	n := 0
	rep := RunOpen(context.Background(), 400, arrivals*time.Second/400, 2, func() Op {
		n++
		if n == arrivals {
			close(gate)
		}
		return c.AllStatesOp(Pair{UserID: "Smith", ArtifactID: int64(n)}, true)
	})
	require.Equal(t, arrivals, n)
	st := rep.Call(CallGetAllStatesGet)
	require.Zero(t, st.Errors)
	require.Equal(t, arrivals, st.Count+st.Dropped, "every arrival is either run or counted as dropped")
	require.GreaterOrEqual(t, st.Dropped, arrivals-3, "two slots, held until the last arrival")
	require.Equal(t, st.Dropped, rep.Total.Dropped)
	dropped := 0
	for _, p := range st.Timeline {
		dropped += p.Dropped
	}
	require.Equal(t, st.Dropped, dropped, "the timeline counts the drops")
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), fmt.Sprintf("%d dropped", st.Dropped))
	var page bytes.Buffer
	require.NoError(t, rep.WriteHTML(&page))
	require.Equal(t, 4, strings.Count(page.String(), "<svg "), "with drops, a chart of errors and drops too")
}

func TestOpenModelKeepsTheRate(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, newMemoryEntities(), nil)
	c := newClient(t, srv, 50)
	started := time.Now()
	rep := RunOpen(context.Background(), 200, 500*time.Millisecond, 50, func() Op {
		return c.AllStatesOp(Pair{UserID: "Smith", ArtifactID: 1}, false)
	})
	require.Equal(t, 100, rep.Total.Count+rep.Total.Dropped)
	require.Zero(t, rep.Total.Errors)
	require.GreaterOrEqual(t, time.Since(started), 495*time.Millisecond, "the last arrival is due at 99/200 s")
}

func TestClosedModelWithMixPassesVerification(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	srv := startAPI(t, m, &memoryReadModel{entities: m})
	c := newClient(t, srv, 8)
	// Few pairs, so workers write the same pairs concurrently.
	mixer := NewMixer(c, Mix{Write: 50, Strong: 30, Eventual: 20}, UserNames(DefaultNames(), 3), 4, 8, 7)
	rep := RunClosed(context.Background(), 8, 300*time.Millisecond, mixer.Next)
	require.Zero(t, rep.Total.Errors, "%+v", rep.Total.ErrorsByMessage)
	for _, call := range []string{CallSetRead, CallAddToFeed, CallRemoveFromFeed, CallGetAllStates, CallGetAllStatesGet, CallEventual} {
		require.Positive(t, rep.Call(call).Count, call)
	}
	v := Verify(context.Background(), c, c.Ledger, VerifyOptions{AssumeFresh: true})
	require.Equal(t, CheckOK, v.API.Status, "%+v", v.API)
	require.Equal(t, CheckOK, v.ReadModel.Status, "%+v", v.ReadModel)
	require.Positive(t, v.Pairs)
	require.LessOrEqual(t, v.Pairs, 12)
}

func TestMixerDrawsByWeight(t *testing.T) {
	t.Parallel()
	c, err := NewClient("http://127.0.0.1:1", ClientOptions{})
	require.NoError(t, err)
	m := NewMixer(c, Mix{Write: 20, Strong: 70, Eventual: 10}, []string{"a", "b"}, 3, 2, 1)
	counts := map[string]int{}
	const n = 20000
	for i := range n {
		counts[m.Next(i%2).Call]++
	}
	share := func(calls ...string) float64 {
		sum := 0
		for _, c := range calls {
			sum += counts[c]
		}
		return float64(sum) / n
	}
	require.InDelta(t, 0.2, share(CallSetRead, CallAddToFeed, CallRemoveFromFeed), 0.02)
	require.InDelta(t, 0.7, share(CallGetAllStates, CallGetAllStatesGet), 0.02)
	require.InDelta(t, 0.1, share(CallEventual), 0.02)
	require.InDelta(t, counts[CallGetAllStates], counts[CallGetAllStatesGet], 2, "GET and POST alternate")
	for _, call := range []string{CallSetRead, CallAddToFeed, CallRemoveFromFeed} {
		require.InDelta(t, 0.2/3, share(call), 0.02, call)
	}
	_, err = ParseMix("strong=1")
	require.NoError(t, err)
	only := NewMixer(c, Mix{Strong: 1}, []string{"a"}, 1, 1, 1)
	for range 10 {
		require.Contains(t, []string{CallGetAllStates, CallGetAllStatesGet}, only.NextArrival().Call)
	}
}

func TestInterruptedRunReportsWhatCompleted(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, newMemoryEntities(), nil)
	c := newClient(t, srv, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	rep := RunClosed(ctx, 4, time.Hour, func(int) Op {
		if calls.Add(1) == 40 {
			cancel()
		}
		return c.WriteOp(workflows.SetArtifactAddedToUserFeed, Pair{UserID: "Smith", ArtifactID: 1}, 0)
	})
	require.True(t, rep.Interrupted)
	require.Zero(t, rep.Total.Errors, "calls cut short by the interruption are no errors")
	require.Equal(t, int(calls.Load()), rep.Total.Count+rep.Canceled)
	require.Positive(t, rep.Total.Count)
}

func TestErrorsAreCountedByStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err          error
		status       int
		message      string
		nonRetriable bool
	}{
		{fmt.Errorf("%w: overloaded", entities.ErrUnavailable), 503, "503 unavailable", false},
		{fmt.Errorf("%w: slow", entities.ErrTimeout), 504, "504 timeout", false},
		{errors.New("boom"), 500, "500 internal", true},
	} {
		m := newMemoryEntities()
		m.FailWith(tc.err)
		srv := startAPI(t, m, nil)
		c := newClient(t, srv, 4)
		rep := runGatling(t, c, 3, 0, 5)
		require.Equal(t, 18, rep.Total.Errors)
		require.Equal(t, map[int]int{tc.status: 18}, rep.Total.ErrorsByStatus)
		require.Equal(t, 3, rep.Call(CallSetRead).ErrorsByMessage[tc.message])
		require.Equal(t, tc.nonRetriable, rep.Failed(), tc.message)
		v := Verify(context.Background(), c, c.Ledger, VerifyOptions{})
		require.Zero(t, v.Pairs, "nothing was acknowledged")
		require.Equal(t, 9, v.UnknownWrites)
	}

	// No server at all: transport errors, by message, non-retriable.
	srv := startAPI(t, newMemoryEntities(), nil)
	srv.Close()
	c := newClient(t, srv, 4)
	rep := runGatling(t, c, 2, 0, 6)
	require.Equal(t, map[int]int{0: 12}, rep.Total.ErrorsByStatus)
	require.Len(t, rep.Total.ErrorsByMessage, 1)
	for msg := range rep.Total.ErrorsByMessage {
		require.Contains(t, msg, "connection refused")
		require.NotContains(t, msg, "http://", "the URL is left out of the message")
	}
	require.True(t, rep.Failed())
}

func TestLatencySummary(t *testing.T) {
	t.Parallel()
	summary := func(ms ...float64) Latency {
		var l latencies
		for _, v := range ms {
			l.add(time.Duration(v * float64(time.Millisecond)))
		}
		return l.summary()
	}
	// Count, min, max and mean are exact; percentiles within 0.1% of the
	// nearest-rank sample.
	near := func(t *testing.T, want, got Latency) {
		t.Helper()
		require.Equal(t, want.Min, got.Min)
		require.Equal(t, want.Max, got.Max)
		require.InDelta(t, want.Mean, got.Mean, 1e-9)
		require.InEpsilon(t, want.P50, got.P50, 1e-3)
		require.InEpsilon(t, want.P90, got.P90, 1e-3)
		require.InEpsilon(t, want.P99, got.P99, 1e-3)
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	rand.Shuffle(len(hundred), func(i, j int) { hundred[i], hundred[j] = hundred[j], hundred[i] })
	near(t, Latency{Min: 1, Mean: 50.5, P50: 50, P90: 90, P99: 99, Max: 100}, summary(hundred...))
	thousand := make([]float64, 1000)
	for i := range thousand {
		thousand[i] = float64(1000 - i)
	}
	near(t, Latency{Min: 1, Mean: 500.5, P50: 500, P90: 900, P99: 990, Max: 1000}, summary(thousand...))
	// A tail: 990 calls at 2 ms, 10 at 2 s.
	tail := slices.Repeat([]float64{2}, 990)
	tail = append(tail, slices.Repeat([]float64{2000}, 10)...)
	near(t, Latency{Min: 2, Mean: 21.98, P50: 2, P90: 2, P99: 2, Max: 2000}, summary(tail...))
	near(t, Latency{Min: 2, Mean: 41.96, P50: 2, P90: 2, P99: 2000, Max: 2000}, summary(append(tail, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000)[10:]...))
	require.Equal(t, Latency{Min: 7, Mean: 7, P50: 7, P90: 7, P99: 7, Max: 7}, summary(7), "a percentile is never outside [min, max]")
	require.Equal(t, Latency{Min: 0.25, Mean: 0.25, P50: 0.25, P90: 0.25, P99: 0.25, Max: 0.25}, summary(0.25))
	require.Equal(t, Latency{}, summary())
	require.Equal(t, 5e6, summary(5e6).P99, "beyond the histogram's hour, still within [min, max]")
}

func TestRecorderTimeline(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	at := func(ms int) time.Time { return r.start.Add(time.Duration(ms) * time.Millisecond) }
	ok := Result{Status: 200}
	unavailable := Result{Status: 503, Err: &StatusError{Status: 503, Code: "unavailable"}}
	ctx := context.Background()
	// Second 0: 10, 20 and 30 ms, and a 503; second 1: 40 ms; second 3:
	// 100 ms and a 503; the last call ends at 4.5 s.
	for _, c := range []struct {
		call       string
		began, end int
		res        Result
	}{
		{"a", 0, 10, ok}, {"a", 100, 120, ok}, {"b", 200, 230, ok}, {"a", 300, 400, unavailable},
		{"b", 1000, 1040, ok},
		{"a", 3000, 3100, ok}, {"b", 3200, 3300, unavailable},
		{"a", 4400, 4500, ok},
	} {
		r.begin()
		r.record(ctx, c.call, at(c.began), at(c.end), c.res)
	}
	r.drop("b", at(2500))
	rep := r.report(ctx)
	require.Equal(t, 4.5, rep.DurationSeconds)
	require.Equal(t, 8, rep.Total.Count)
	require.Equal(t, 6, rep.Total.OK)
	require.Equal(t, 2, rep.Total.Errors)
	require.Equal(t, 1, rep.Total.Dropped)
	require.Equal(t, 0, rep.Total.NonRetriable)
	require.InDelta(t, 8/4.5, rep.Total.Throughput, 1e-12)
	require.InDelta(t, 5/4.5, rep.Call("a").Throughput, 1e-12)
	require.Equal(t, map[int]int{503: 2}, rep.Total.ErrorsByStatus)
	require.Equal(t, map[string]int{"503 unavailable": 1}, rep.Call("b").ErrorsByMessage)

	type point struct{ second, count, errors, dropped, p50, p99 int }
	timeline := func(c CallStats) []point {
		var out []point
		for _, p := range c.Timeline {
			out = append(out, point{p.Second, p.Count, p.Errors, p.Dropped, int(math.Round(p.P50)), int(math.Round(p.P99))})
		}
		return out
	}
	require.Equal(t, []point{{0, 4, 1, 0, 20, 30}, {1, 1, 0, 0, 40, 40}, {2, 0, 0, 1, 0, 0}, {3, 2, 1, 0, 100, 100}, {4, 1, 0, 0, 100, 100}}, timeline(rep.Total))
	require.Equal(t, []point{{0, 3, 1, 0, 10, 20}, {1, 0, 0, 0, 0, 0}, {2, 0, 0, 0, 0, 0}, {3, 1, 0, 0, 100, 100}, {4, 1, 0, 0, 100, 100}}, timeline(rep.Call("a")))
	require.Equal(t, Latency{Min: 10, Mean: 50, P50: 30, P90: 100, P99: 100, Max: 100}, roundLatency(rep.Total.Latency))
}

func roundLatency(l Latency) Latency {
	r := func(v float64) float64 { return math.Round(v) }
	return Latency{Min: r(l.Min), Mean: r(l.Mean), P50: r(l.P50), P90: r(l.P90), P99: r(l.P99), Max: r(l.Max)}
}

func TestRecorderMemoryIsBoundedByTheRunsLength(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	ctx := context.Background()
	// An hour of calls, 100 a second: only the last seconds keep a histogram.
	for i := range 3600 * 100 {
		end := r.start.Add(time.Duration(i) * 10 * time.Millisecond)
		r.begin()
		r.record(ctx, "a", end.Add(-time.Duration(1+i%50)*time.Millisecond), end, Result{Status: 200})
	}
	c := r.calls["a"]
	require.Len(t, c.seconds, 3600)
	open := 0
	for _, s := range c.seconds {
		if s.hist != nil {
			open++
		}
	}
	require.LessOrEqual(t, open, openSeconds)
	// A closed second kept its percentiles.
	require.InEpsilon(t, 25.0, c.seconds[10].p50, 1e-3)
	require.InEpsilon(t, 50.0, c.seconds[10].p99, 1e-3)
	rep := r.report(ctx)
	require.Equal(t, 360000, rep.Call("a").OK)
	require.InEpsilon(t, 25.5, rep.Call("a").Latency.Mean, 1e-9)
	// A call filed late, in a closed second, still counts.
	r.begin()
	r.record(ctx, "a", r.start, r.start.Add(5*time.Millisecond), Result{Status: 200})
	require.Equal(t, 101, r.report(ctx).Call("a").Timeline[0].Count)
}

func TestExpectations(t *testing.T) {
	t.Parallel()
	base := time.Now()
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	const (
		read   = workflows.SetArtifactReadByUser
		add    = workflows.SetArtifactAddedToUserFeed
		remove = workflows.SetArtifactRemovedFromUserFeed
	)
	ok := Result{Status: 200, Write: true, Acked: true}
	unavailable := Result{Status: 503, Err: &StatusError{503, "unavailable"}, Write: true}
	bad := Result{Status: 400, Err: &StatusError{400, "invalid_argument"}, Write: true}
	type w struct {
		kind       workflows.CommandKind
		issuer     int
		sent, done int
		res        Result
	}
	cases := []struct {
		name   string
		writes []w
		fresh  bool
		want   string // "" when the pair is not checked
	}{
		{"one issuer: the last feed command wins", []w{{read, 1, 0, 1, ok}, {add, 1, 2, 3, ok}, {remove, 1, 4, 5, ok}}, true, "read=true inFeed=false"},
		{"one issuer, added last", []w{{remove, 1, 0, 1, ok}, {add, 1, 2, 3, ok}}, true, "read=false inFeed=true"},
		{"not fresh: unwritten flags are not checked", []w{{add, 1, 0, 1, ok}}, false, "read=any inFeed=true"},
		{"not fresh, no feed write", []w{{read, 1, 0, 1, ok}}, false, "read=true inFeed=any"},
		{"fresh, no feed write", []w{{read, 1, 0, 1, ok}}, true, "read=true inFeed=false"},
		{"concurrent issuers: either last command", []w{{add, 1, 0, 10, ok}, {remove, 2, 5, 12, ok}}, true, "read=false inFeed=any"},
		{"concurrent issuers, same last command", []w{{remove, 1, 0, 1, ok}, {add, 1, 2, 10, ok}, {add, 2, 5, 12, ok}}, true, "read=false inFeed=true"},
		{"an issuer's earlier command does not count", []w{{remove, 1, 0, 3, ok}, {add, 1, 4, 10, ok}, {add, 2, 2, 12, ok}}, true, "read=false inFeed=true"},
		{"acknowledged before the other was sent", []w{{add, 1, 0, 1, ok}, {remove, 2, 2, 3, ok}}, true, "read=false inFeed=false"},
		{"a rejected write changes nothing", []w{{add, 1, 0, 1, ok}, {remove, 1, 2, 3, bad}, {read, 1, 4, 5, bad}}, true, "read=false inFeed=true"},
		{"a write of unknown outcome may have landed", []w{{add, 1, 0, 1, ok}, {remove, 1, 2, 3, unavailable}, {read, 1, 4, 5, unavailable}}, true, "read=any inFeed=any"},
		{"nothing acknowledged: not checked", []w{{add, 1, 0, 1, unavailable}}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLedger()
			p := Pair{UserID: "Smith", ArtifactID: 1}
			for _, x := range tc.writes {
				l.Record(p, x.kind, x.issuer, at(x.sent), at(x.done), x.res)
			}
			exps := l.Expectations(tc.fresh)
			if tc.want == "" {
				require.Empty(t, exps)
				return
			}
			require.Len(t, exps, 1)
			require.Equal(t, tc.want, exps[0].String())
		})
	}
}

func TestHTMLReportIsWellFormed(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, newMemoryEntities(), nil)
	c := newClient(t, srv, 16)
	rep := runGatling(t, c, 30, 1500*time.Millisecond, 8)
	rep.Params["names"] = `<script>"&'</script>` // escaped, like any text
	rep.Verification = Verify(context.Background(), c, c.Ledger, VerifyOptions{})
	var page bytes.Buffer
	require.NoError(t, rep.WriteHTML(&page))
	html := page.String()
	require.NotContains(t, html, "<script")
	require.NotContains(t, html, "src=")
	require.NotContains(t, html, "href=")

	d := xml.NewDecoder(strings.NewReader(html))
	d.Strict = true
	elements := map[string]int{}
	var polylinePoints []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "the page is well-formed XML")
		if se, ok := tok.(xml.StartElement); ok {
			elements[se.Name.Local]++
			if se.Name.Local == "polyline" {
				for _, a := range se.Attr {
					if a.Name.Local == "points" {
						polylinePoints = append(polylinePoints, a.Value)
					}
				}
			}
		}
	}
	require.Equal(t, 3, elements["svg"], "p50, p99 and throughput charts")
	require.GreaterOrEqual(t, elements["polyline"], 6, "a line per call at least in the throughput chart")
	for _, pts := range polylinePoints {
		require.GreaterOrEqual(t, len(strings.Fields(pts)), 2)
	}
	require.Equal(t, 1, elements["table"])
	for _, call := range gatlingCalls {
		require.Contains(t, html, call)
	}
	require.Contains(t, html, "verification: OK")
}

func TestJSONReportRoundTrips(t *testing.T) {
	t.Parallel()
	m := newMemoryEntities()
	srv := startAPI(t, m, &memoryReadModel{entities: m})
	c := newClient(t, srv, 16)
	rep := runGatling(t, c, 20, 300*time.Millisecond, 9)
	rep.Verification = Verify(context.Background(), c, c.Ledger, VerifyOptions{})
	var first bytes.Buffer
	require.NoError(t, rep.WriteJSON(&first))
	var back Report
	require.NoError(t, json.Unmarshal(first.Bytes(), &back))
	require.Equal(t, *rep, back)
	var second bytes.Buffer
	require.NoError(t, back.WriteJSON(&second))
	require.Equal(t, first.String(), second.String())
	require.Contains(t, first.String(), `"latencyMs": {`)
	require.Contains(t, first.String(), `"readModel": {`)
}

func TestRequestsAreBuiltAsGatlingDid(t *testing.T) {
	t.Parallel()
	type seen struct{ method, path, contentType, accept, body string }
	got := make(chan seen, 10)
	router := newRouter(newMemoryEntities(), nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Header.Get("Accept"), string(b)}
		r.Body = io.NopCloser(bytes.NewReader(b))
		router.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv, 1)
	p := Pair{UserID: `O'Brien "Jr"`, ArtifactID: 42}
	for _, op := range (&Gatling{Client: c, Names: []string{p.UserID}, Artifacts: 1}).User(0) {
		require.NoError(t, op.Do(context.Background()).Err, op.Call)
	}
	body := `{ "artifactId": 0, "userId": "O'Brien \"Jr\"" }`
	for _, call := range gatlingCalls {
		require.Equal(t, seen{"POST", "/artifactState/" + call, "application/json", "application/json", body}, <-got)
	}
	_, res := c.AllStates(context.Background(), p, true)
	require.NoError(t, res.Err)
	require.Equal(t, seen{"GET", "/artifactState/getAllStates?artifactId=42&userId=O%27Brien+%22Jr%22", "", "application/json", ""}, <-got)
	_, res = c.Eventual(context.Background(), Pair{UserID: "a/b", ArtifactID: 1})
	require.True(t, ReadModelNotConfigured(res.Err), "%v", res.Err)
	require.Equal(t, "/v1/users/a%2Fb/artifacts/1?consistency=eventual", (<-got).path)
}

func TestParseMix(t *testing.T) {
	t.Parallel()
	m, err := ParseMix("write=20,strong=70,eventual=10")
	require.NoError(t, err)
	require.Equal(t, DefaultMix, m)
	require.Equal(t, "write=20,strong=70,eventual=10", m.String())
	m, err = ParseMix(" write = 1 , strong=0")
	require.NoError(t, err)
	require.Equal(t, Mix{Write: 1}, m)
	for in, msg := range map[string]string{
		"write=20,reads=80":  `unknown kind "reads"`,
		"write":              "is not kind=weight",
		"write=-1,strong=2":  "non-negative integer",
		"write=x":            "non-negative integer",
		"write=1,write=2":    "given twice",
		"write=0,strong=0":   "add up to 0",
		"":                   "add up to 0",
		"eventual=1.5":       "non-negative integer",
		"strong=1,eventual=": "non-negative integer",
	} {
		_, err := ParseMix(in)
		require.ErrorContains(t, err, msg, in)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	names := DefaultNames()
	require.GreaterOrEqual(t, len(names), 200)
	require.Equal(t, "Smith", names[0])
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(names))), len(names), "no duplicates")

	got, err := ReadNames(strings.NewReader("name\nSmith,1\n\n\"O'Neil, Jr\"\n  Jones  \nSmith\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"Smith", "O'Neil, Jr", "Jones"}, got)
	_, err = ReadNames(strings.NewReader("Smith\nbad\x01name\n"))
	require.ErrorContains(t, err, "line 2: userId")
	_, err = ReadNames(strings.NewReader("\n\n"))
	require.ErrorContains(t, err, "no names")

	require.Equal(t, []string{"a", "b", "a-2", "b-2", "a-3"}, UserNames([]string{"a", "b"}, 5))
	require.Equal(t, []string{"a"}, UserNames([]string{"a", "b"}, 1))
}

func TestTargets(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://localhost:8082":       "http://localhost:8082",
		"http://localhost:8082/":      "http://localhost:8082",
		"https://api.example.com/x/":  "https://api.example.com/x",
		"http://127.0.0.1:1/prefix/a": "http://127.0.0.1:1/prefix/a",
	} {
		got, err := ParseTarget(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, in := range []string{"localhost:8082", "ftp://x", "http://", "http://x/?a=1", "::"} {
		_, err := ParseTarget(in)
		require.Error(t, err, in)
	}
}
