// Package faultload is the load the fault test and `scripts/cluster chaos`
// keep on the local cluster while they break it: paced writes and strong
// reads through every api node on pairs no one wrote before, recorded as a
// ledger (what must survive), a linearizability history (what the clients
// saw) and a list of calls (when calls failed, and how).
package faultload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/internal/loadtest"
	"github.com/artifactstate/artifactstate/workflows"
)

// Call is one API call of the load, as the clients saw it.
type Call struct {
	Node         int // which api node (index into Load.Nodes)
	Write        bool
	Began, Ended time.Time
	Acked        bool // a write answered {"success":true}
	Err          error
	// Reason classifies a failure: "503 unavailable", "504 timeout", "no
	// answer (api node down)", or, for a failure the contract does not
	// allow, a text starting with "VIOLATION".
	Reason string
}

// Load is steady writes and strong reads through every api node, on a set
// of pairs no one wrote before, recorded three ways: the ledger (what must
// survive), the linearizability history (what clients saw, in time) and
// the call list (when calls failed, and how).
type Load struct {
	Nodes  []*loadtest.Client
	Pairs  []loadtest.Pair
	Ledger *loadtest.Ledger
	Rec    *linearizability.Recorder
	// NodeDown reports whether a call to node i that began and ended at
	// the given times may have found that node killed.
	NodeDown func(node int, began, ended time.Time) bool

	// out is 1 + the api node out of rotation (0: none), as a load
	// balancer takes a draining node out.
	out atomic.Int32

	mu    sync.Mutex
	calls []Call
}

// TakeOut and PutBack move an api node out of and back into rotation.
func (l *Load) TakeOut(node int) { l.out.Store(int32(node + 1)) }
func (l *Load) PutBack(int)      { l.out.Store(0) }

// pick is the node of a client's k-th call: round robin, skipping the one
// out of rotation.
func (l *Load) pick(client, k int) int {
	node := (client + k) % len(l.Nodes)
	if int(l.out.Load()) == node+1 {
		node = (node + 1) % len(l.Nodes)
	}
	return node
}

var writeKinds = []workflows.CommandKind{
	workflows.SetArtifactReadByUser, workflows.SetArtifactAddedToUserFeed, workflows.SetArtifactRemovedFromUserFeed,
}

var linKind = map[workflows.CommandKind]linearizability.Kind{
	workflows.SetArtifactReadByUser:          linearizability.SetRead,
	workflows.SetArtifactAddedToUserFeed:     linearizability.AddToFeed,
	workflows.SetArtifactRemovedFromUserFeed: linearizability.RemoveFromFeed,
}

// Run starts clients goroutines, each starting a call every interval (or
// at once when the previous one took longer), alternating api nodes, half
// writes (one of the three commands) and half strong reads, until stop is
// closed; it returns when every call in flight has finished (calls are
// never cancelled: a call cut short would tell nothing). The pace keeps
// the load steady and leaves the two cores room to restart what a fault
// killed; unpaced, the load alone saturates them.
func (l *Load) Run(clients int, interval time.Duration, seed uint64, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				node := l.pick(i, k)
				p := l.Pairs[rng.IntN(len(l.Pairs))]
				if rng.IntN(2) == 0 {
					l.write(i, node, writeKinds[rng.IntN(len(writeKinds))], p)
				} else {
					l.read(i, node, p)
				}
			}
		})
	}
	wg.Wait()
}

func (l *Load) write(client, node int, kind workflows.CommandKind, p loadtest.Pair) {
	inv := l.Rec.Invoke(p, client, linKind[kind])
	began := time.Now()
	res := l.Nodes[node].Command(context.Background(), kind, p)
	ended := time.Now()
	if !NeverSent(res.Err) { // a request that never left has no outcome to record
		l.Ledger.Record(p, kind, client, began, ended, res)
	}
	switch {
	case res.Acked:
		inv.Done(linearizability.Output{})
	case res.Status >= 400 && res.Status < 500, NeverSent(res.Err):
		inv.NotApplied()
	default:
		inv.Failed(res.Err)
	}
	l.note(Call{Node: node, Write: true, Began: began, Ended: ended, Acked: res.Acked, Err: res.Err})
}

func (l *Load) read(client, node int, p loadtest.Pair) {
	inv := l.Rec.Invoke(p, client, linearizability.GetAllStates)
	began := time.Now()
	s, res := l.Nodes[node].AllStates(context.Background(), p, true)
	ended := time.Now()
	if res.Err == nil {
		inv.Done(linearizability.Output{State: linearizability.State{Read: s.ArtifactRead, InFeed: s.ArtifactInUserFeed}})
	} else {
		inv.Failed(res.Err)
	}
	l.note(Call{Node: node, Began: began, Ended: ended, Err: res.Err})
}

func (l *Load) note(c Call) {
	if c.Err != nil {
		c.Reason = l.classify(c)
	}
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

// classify says what kind of failure c is; the contract allows 503 and
// 504 with a JSON error body, and no answer only from a killed api node.
func (l *Load) classify(c Call) string {
	var se *loadtest.StatusError
	switch {
	case errors.As(c.Err, &se) && (se.Status == 503 || se.Status == 504) && se.Code != "":
		return fmt.Sprintf("%d %s", se.Status, se.Code)
	case errors.As(c.Err, &se):
		return fmt.Sprintf("VIOLATION: %d %q (only 503/504 JSON errors are allowed)", se.Status, se.Code)
	case errors.Is(c.Err, loadtest.ErrUnexpectedAnswer):
		return "VIOLATION: " + c.Err.Error()
	case connectionLost(c.Err) && l.NodeDown != nil && l.NodeDown(c.Node, c.Began, c.Ended):
		return "no answer (api node down)"
	default:
		return "VIOLATION: no answer: " + c.Err.Error()
	}
}

// NeverSent reports a request that failed before a connection was made
// (a killed api node refuses it): it cannot have had any effect.
func NeverSent(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// connectionLost reports errors of a peer that is gone: refused, reset,
// closed mid-answer.
func connectionLost(err error) bool {
	var opErr *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) ||
		(errors.As(err, &opErr) && opErr.Op == "dial")
}

// Snapshot returns the calls so far.
func (l *Load) Snapshot() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Call(nil), l.calls...)
}

// OKSince counts the successful calls through node that began after t.
func (l *Load) OKSince(node int, t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if c.Node == node && c.Err == nil && c.Began.After(t) {
			n++
		}
	}
	return n
}

// WaitOK waits until want calls that began after since succeeded through
// every api node, for at most within.
func (l *Load) WaitOK(ctx context.Context, since time.Time, want int, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		var got []int
		for n := range l.Nodes {
			c := l.OKSince(n, since)
			got = append(got, c)
			ok = ok && c >= want
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %v successful calls per api node within %v, want %d each", got, within, want)
		case <-tick.C:
		}
	}
}

// Sleep waits for d, the length of a fault (not a synchronisation), or
// until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Name says what kind of call c was.
func (c Call) Name() string {
	if c.Write {
		return "write"
	}
	return "strong read"
}

// Span is a stretch of time.
type Span struct{ From, To time.Time }

// Later returns the later of a and b.
func Later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Union returns the total length of spans and their longest unbroken
// stretch, in seconds.
func Union(spans []Span) (total, longest float64) {
	slices.SortFunc(spans, func(a, b Span) int { return a.From.Compare(b.From) })
	var cur Span
	flush := func() {
		d := cur.To.Sub(cur.From).Seconds()
		total += d
		longest = max(longest, d)
	}
	for i, s := range spans {
		switch {
		case i == 0:
			cur = s
		case !s.From.After(cur.To):
			cur.To = Later(cur.To, s.To)
		default:
			flush()
			cur = s
		}
	}
	if len(spans) > 0 {
		flush()
	}
	return total, longest
}
