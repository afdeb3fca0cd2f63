package loadtest

import (
	"context"
	"time"

	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/workflows"
)

// The hot-pair load of issue 10: 16 readers and 4 writers on one pair for
// 30 s.
const (
	DefaultHotPairReaders  = 16
	DefaultHotPairWriters  = 4
	DefaultHotPairDuration = 30 * time.Second
)

// HotPair is many clients on ONE pair (issue 10): Readers call
// getAllStates, isArtifactInUserFeed and isArtifactReadByUser in turn,
// Writers send setArtifactAddedToUserFeed, setArtifactRemovedFromUserFeed
// and setArtifactReadByUser in turn (each writer starting at another one),
// back to back. Every call is recorded in Recorder, whose history
// linearizability.Check then checks: the pair must be new, as the model
// starts from the empty state.
type HotPair struct {
	Client           *Client
	Pair             Pair
	Readers, Writers int
	Recorder         *linearizability.Recorder

	calls []int // per worker: calls made so far
}

var (
	hotReads  = []linearizability.Kind{linearizability.GetAllStates, linearizability.IsInFeed, linearizability.IsRead}
	hotWrites = []linearizability.Kind{linearizability.AddToFeed, linearizability.RemoveFromFeed, linearizability.SetRead}
)

// Workers is the closed model's concurrency: readers, then writers.
func (h *HotPair) Workers() int { return h.Readers + h.Writers }

// Next is worker's next call (closed model; called from the worker's
// goroutine).
func (h *HotPair) Next(worker int) Op {
	if h.calls == nil {
		panic("loadtest: HotPair.Next before Prepare")
	}
	n := h.calls[worker]
	h.calls[worker]++
	kind := hotReads[n%len(hotReads)]
	if worker >= h.Readers {
		kind = hotWrites[(n+worker)%len(hotWrites)]
	}
	return h.Client.RecordedOp(h.Recorder, worker, h.Pair, kind)
}

// Prepare readies Next for Workers() workers.
func (h *HotPair) Prepare() { h.calls = make([]int, h.Workers()) }

// Run runs the load for duration and checks its history; the visualization
// of a history found not linearizable goes to visualization (if not
// empty). The report's Linearizability section holds the verdict.
func (h *HotPair) Run(ctx context.Context, r *Runner, duration time.Duration, o linearizability.Options) (*Report, error) {
	h.Prepare()
	rep := r.Closed(ctx, h.Workers(), duration, h.Next)
	lin, err := linearizability.Check(h.Recorder.History(), o)
	rep.Linearizability = lin
	return rep, err
}

var commandOf = map[linearizability.Kind]workflows.CommandKind{
	linearizability.SetRead:        workflows.SetArtifactReadByUser,
	linearizability.AddToFeed:      workflows.SetArtifactAddedToUserFeed,
	linearizability.RemoveFromFeed: workflows.SetArtifactRemovedFromUserFeed,
}

// RecordedOp is the API call kind on p by client, recorded in rec for a
// linearizability check: an acknowledged write ({"success":true}), a write
// rejected with a 4xx (not applied), a write of unknown outcome (any other
// failure: 503, 504, 500, no answer, an interruption), an answered read,
// a failed read (told nothing). Reads are POSTs with the JSON body; writes
// are also recorded in c.Ledger.
func (c *Client) RecordedOp(rec *linearizability.Recorder, client int, p Pair, kind linearizability.Kind) Op {
	if cmd, ok := commandOf[kind]; ok {
		write := c.WriteOp(cmd, p, client)
		return Op{Call: write.Call, Do: func(ctx context.Context) Result {
			call := rec.Invoke(p, client, kind)
			res := write.Do(ctx)
			switch {
			case res.Acked:
				call.Done(linearizability.Output{})
			case res.Status >= 400 && res.Status < 500:
				call.NotApplied()
			default:
				call.Failed(res.Err)
			}
			return res
		}}
	}
	name := map[linearizability.Kind]string{linearizability.GetAllStates: CallGetAllStates,
		linearizability.IsRead: CallIsRead, linearizability.IsInFeed: CallIsInFeed}[kind]
	return Op{Call: name, Do: func(ctx context.Context) Result {
		call := rec.Invoke(p, client, kind)
		var (
			s   linearizability.State
			res Result
		)
		switch kind {
		case linearizability.GetAllStates:
			var ps PairState
			ps, res = c.AllStates(ctx, p, false)
			s = linearizability.State{Read: ps.ArtifactRead, InFeed: ps.ArtifactInUserFeed}
		case linearizability.IsRead:
			s.Read, res = c.Answer(ctx, name, p)
		default:
			s.InFeed, res = c.Answer(ctx, name, p)
		}
		if res.Err != nil {
			call.Failed(res.Err)
		} else {
			call.Done(linearizability.Output{State: s})
		}
		return res
	}}
}
