package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/artifactstate/artifactstate/workflows"
)

// The fan-out scenario's defaults: publish one artifact to 10,000
// followers in calls of 1000 users, one call at a time (the service runs
// each call's items api.fanoutConcurrency at a time).
const (
	DefaultFollowers         = 10000
	DefaultFanOutBatch       = 1000
	DefaultFanOutConcurrency = 1
	DefaultFanOutArtifacts   = 1
)

// FollowerIDs returns n user IDs no earlier run used, tagged with tag (e.g.
// RunTag of the seed): follower i is "<name>-<tag>-<i>", the names cycling.
func FollowerIDs(names []string, tag string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = names[i%len(names)] + "-" + tag + "-" + strconv.Itoa(i)
	}
	return out
}

// FanOut publishes artifacts to followers ("publish an artifact to N
// followers"): for each artifact, fan-out calls of setArtifactAddedToUserFeed
// naming Batch followers each, until every follower was named. Every item
// is recorded in the client's Ledger (so Verify checks that every follower
// whose item was applied reads inFeed=true), and the report's FanOut
// section counts applied and failed items.
type FanOut struct {
	Client    *Client
	Followers []string
	Artifacts []int64
	// Batch is the most users of one call.
	Batch int
	// KeyPrefix, when set, gives call i the Idempotency-Key
	// "<KeyPrefix>-<artifact>-<batch>": a run again with the same prefix
	// (the same seed) applies nothing twice.
	KeyPrefix string

	answered atomic.Int64 // pairs whose call answered
	mu       sync.Mutex
	rep      FanOutReport
	perPair  latencies
}

// Calls is how many fan-out calls the run makes.
func (s *FanOut) Calls() int { return len(s.Artifacts) * s.batches() }

// Pairs is how many pairs the calls name.
func (s *FanOut) Pairs() int { return len(s.Artifacts) * len(s.Followers) }

// PairsAnswered is how many pairs the calls answered so far (applied or
// not): the run's progress.
func (s *FanOut) PairsAnswered() int { return int(s.answered.Load()) }

func (s *FanOut) batches() int { return (len(s.Followers) + s.Batch - 1) / s.Batch }

// Run makes the calls, concurrency at a time, and reports, with the FanOut
// section filled in.
func (s *FanOut) Run(ctx context.Context, r *Runner, concurrency int) *Report {
	s.rep = FanOutReport{Followers: len(s.Followers), Artifacts: len(s.Artifacts), Batch: s.Batch, Calls: s.Calls(), Pairs: s.Pairs()}
	rep := r.Each(ctx, concurrency, s.Calls(), func(_ context.Context, i int, run func(Op) Result) { run(s.op(i)) })
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.rep
	out.FailedItemsByReason = nonEmpty(s.rep.FailedItemsByReason)
	out.Examples = slices.Clone(s.rep.Examples)
	out.PerPairLatency = s.perPair.summary()
	out.PairsPerSecond = throughput(out.Applied, rep.DurationSeconds)
	rep.FanOut = &out
	return rep
}

// request is call i: artifact i div batches, followers of batch i mod
// batches.
func (s *FanOut) request(i int) FanOutRequest {
	artifact, batch := s.Artifacts[i/s.batches()], i%s.batches()
	users := s.Followers[batch*s.Batch : min((batch+1)*s.Batch, len(s.Followers))]
	r := FanOutRequest{ArtifactID: artifact, Kind: workflows.SetArtifactAddedToUserFeed, UserIDs: users}
	if s.KeyPrefix != "" {
		r.IdempotencyKey = s.KeyPrefix + "-" + strconv.FormatInt(artifact, 10) + "-" + strconv.Itoa(batch)
	}
	return r
}

func (s *FanOut) op(i int) Op {
	req := s.request(i)
	return Op{Call: CallFanOut, Do: func(ctx context.Context) Result {
		issued := time.Now()
		items, res := s.Client.FanOut(ctx, req)
		s.note(ctx, i, req, items, res, issued, time.Now())
		return res
	}}
}

// note files call i's answer: each item in the ledger (call i is its
// items' issuer) and in the report.
func (s *FanOut) note(ctx context.Context, i int, req FanOutRequest, items []FanOutItem, res Result, issued, done time.Time) {
	if res.Err != nil {
		for _, u := range req.UserIDs {
			s.record(Pair{UserID: u, ArtifactID: req.ArtifactID}, req.Kind, i, issued, done, res)
		}
		if ctx.Err() != nil && errors.Is(res.Err, context.Canceled) {
			return // interrupted: neither applied nor failed
		}
		s.answered.Add(int64(len(req.UserIDs)))
		s.mu.Lock()
		defer s.mu.Unlock()
		s.rep.CallsFailed++
		s.rep.PairsInFailedCalls += len(req.UserIDs)
		s.rep.example(fmt.Sprintf("call for artifact %d, %d users from %q: %s", req.ArtifactID, len(req.UserIDs), req.UserIDs[0], errorMessage(res.Err)))
		return
	}
	applied := 0
	var failed []Pair
	var reasons []string
	for _, item := range items {
		p := Pair{UserID: item.UserID, ArtifactID: req.ArtifactID}
		s.record(p, req.Kind, i, issued, done, Result{Write: true, Acked: !item.Failed(), Status: item.Status})
		if reason := itemFailure(item, req.Kind); reason != "" {
			failed, reasons = append(failed, p), append(reasons, reason)
		} else {
			applied++
		}
	}
	s.answered.Add(int64(len(items)))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rep.Applied += applied
	s.perPair.add(done.Sub(issued) / time.Duration(len(items)))
	for j, p := range failed {
		s.rep.FailedItems++
		if s.rep.FailedItemsByReason == nil {
			s.rep.FailedItemsByReason = map[string]int{}
		}
		s.rep.FailedItemsByReason[reasons[j]]++
		s.rep.example(fmt.Sprintf("(%q, %d): %s", p.UserID, p.ArtifactID, reasons[j]))
	}
}

func (s *FanOut) record(p Pair, kind workflows.CommandKind, issuer int, issued, done time.Time, res Result) {
	if s.Client.Ledger != nil {
		s.Client.Ledger.Record(p, kind, issuer, issued, done, res)
	}
}

// wrongState is the reason of an item answered applied with a state the
// command cannot leave.
const wrongState = "200 wrong state"

// itemFailure is why an item failed ("503 unavailable"), "" if it was
// applied and its state is what the command leaves.
func itemFailure(item FanOutItem, kind workflows.CommandKind) string {
	if item.Failed() {
		return strconv.Itoa(item.Status) + " " + item.Code
	}
	ok := item.State.ArtifactRead
	if kind != workflows.SetArtifactReadByUser {
		ok = item.State.ArtifactInUserFeed == feedValue(kind)
	}
	if !ok {
		return wrongState
	}
	return ""
}

// FanOutReport is what the fan-out scenario saw.
type FanOutReport struct {
	Followers int `json:"followers"`
	Artifacts int `json:"artifacts"`
	Batch     int `json:"batch"`
	// Calls and Pairs the run was to make and name.
	Calls int `json:"calls"`
	Pairs int `json:"pairs"`
	// Applied items answered the state the command leaves; FailedItems
	// did not (an error, or another state), by reason ("503 unavailable",
	// "200 wrong state"). CallsFailed failed as a whole, with
	// PairsInFailedCalls users. Pairs in none of these were not sent (the
	// run was interrupted).
	Applied             int            `json:"applied"`
	FailedItems         int            `json:"failedItems"`
	FailedItemsByReason map[string]int `json:"failedItemsByReason,omitempty"`
	CallsFailed         int            `json:"callsFailed"`
	PairsInFailedCalls  int            `json:"pairsInFailedCalls"`
	// PairsPerSecond is Applied over the measured window.
	PairsPerSecond float64 `json:"pairsPerSecond"`
	// PerPairLatency is each successful call's latency divided by its
	// users: what one pair cost at the service's fan-out concurrency (the
	// service does not time items one by one). The calls' own latency is
	// the report's fanout call.
	PerPairLatency Latency `json:"perPairLatencyMs"`
	// Examples lists up to 20 failed items or calls.
	Examples []string `json:"examples,omitempty"`
}

// Failed reports whether a follower's pair was not applied, or not as the
// command leaves it.
func (r *FanOutReport) Failed() bool { return r.FailedItems > 0 || r.CallsFailed > 0 }

// NotSent is how many pairs no call answered (an interrupted run).
func (r *FanOutReport) NotSent() int {
	return r.Pairs - r.Applied - r.FailedItems - r.PairsInFailedCalls
}

func (r *FanOutReport) example(what string) {
	if len(r.Examples) < maxExamples {
		r.Examples = append(r.Examples, what)
	}
}

func (r *FanOutReport) writeText(w io.Writer) {
	verdict := "OK"
	if r.Failed() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "fan-out: %s\n", verdict)
	fmt.Fprintf(w, "  %d calls of up to %d users (%d followers x %d artifacts = %d pairs): %d applied, %d failed, %d in %d failed calls",
		r.Calls, r.Batch, r.Followers, r.Artifacts, r.Pairs, r.Applied, r.FailedItems, r.PairsInFailedCalls, r.CallsFailed)
	if n := r.NotSent(); n > 0 {
		fmt.Fprintf(w, ", %d not sent", n)
	}
	fmt.Fprintf(w, "; %.1f pairs/s\n", r.PairsPerSecond)
	if l := r.PerPairLatency; r.Applied+r.FailedItems > 0 {
		fmt.Fprintf(w, "  per pair (call latency / users in the call): mean %.3f ms, p50 %.3f, p90 %.3f, p99 %.3f, max %.3f\n",
			l.Mean, l.P50, l.P90, l.P99, l.Max)
	}
	if len(r.FailedItemsByReason) > 0 {
		var by []string
		for _, reason := range slices.Sorted(maps.Keys(r.FailedItemsByReason)) {
			by = append(by, fmt.Sprintf("%s: %d", reason, r.FailedItemsByReason[reason]))
		}
		fmt.Fprintf(w, "  failed items by reason: %s\n", strings.Join(by, ", "))
	}
	for _, e := range r.Examples {
		fmt.Fprintf(w, "    %s\n", e)
	}
}

// ProgressBar draws done of total as width cells and a percentage:
// "[=========>          ]  45%".
func ProgressBar(done, total, width int) string {
	frac := 1.0
	if total > 0 {
		frac = min(max(float64(done)/float64(total), 0), 1)
	}
	full := int(frac * float64(width))
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	return fmt.Sprintf("[%s] %3d%%", bar, int(frac*100))
}
