package clusterfault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/artifactstate/artifactstate/internal/linearizability"
	"github.com/artifactstate/artifactstate/internal/loadtest"
	"github.com/artifactstate/artifactstate/workflows"
)

// call is one API call of the load, as the clients saw it.
type call struct {
	node         int // which api node (index into load.nodes)
	write        bool
	began, ended time.Time
	acked        bool // a write answered {"success":true}
	err          error
	// reason classifies a failure: "503 unavailable", "504 timeout", "no
	// answer (api node down)", or, for a failure the contract does not
	// allow, a text starting with "VIOLATION".
	reason string
}

// load is steady writes and strong reads through every api node, on a set
// of pairs no one wrote before, recorded three ways: the ledger (what must
// survive), the linearizability history (what clients saw, in time) and
// the call list (when calls failed, and how).
type load struct {
	nodes  []*loadtest.Client
	pairs  []loadtest.Pair
	ledger *loadtest.Ledger
	rec    *linearizability.Recorder
	// nodeDown reports whether a call to node i that began and ended at
	// the given times may have found that node killed.
	nodeDown func(node int, began, ended time.Time) bool

	// out is 1 + the api node out of rotation (0: none), as a load
	// balancer takes a draining node out.
	out atomic.Int32

	mu    sync.Mutex
	calls []call
}

// takeOut and putBack move an api node out of and back into rotation.
func (l *load) takeOut(node int) { l.out.Store(int32(node + 1)) }
func (l *load) putBack(int)      { l.out.Store(0) }

// pick is the node of a client's k-th call: round robin, skipping the one
// out of rotation.
func (l *load) pick(client, k int) int {
	node := (client + k) % len(l.nodes)
	if int(l.out.Load()) == node+1 {
		node = (node + 1) % len(l.nodes)
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

// run starts clients goroutines, each starting a call every interval (or
// at once when the previous one took longer), alternating api nodes, half
// writes (one of the three commands) and half strong reads, until stop is
// closed; it returns when every call in flight has finished (calls are
// never cancelled: a call cut short would tell nothing). The pace keeps
// the load steady and leaves the two cores room to restart what a fault
// killed; unpaced, the load alone saturates them.
func (l *load) run(clients int, interval time.Duration, seed uint64, stop <-chan struct{}) {
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
				p := l.pairs[rng.IntN(len(l.pairs))]
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

func (l *load) write(client, node int, kind workflows.CommandKind, p loadtest.Pair) {
	inv := l.rec.Invoke(p, client, linKind[kind])
	began := time.Now()
	res := l.nodes[node].Command(context.Background(), kind, p)
	ended := time.Now()
	if !neverSent(res.Err) { // a request that never left has no outcome to record
		l.ledger.Record(p, kind, client, began, ended, res)
	}
	switch {
	case res.Acked:
		inv.Done(linearizability.Output{})
	case res.Status >= 400 && res.Status < 500, neverSent(res.Err):
		inv.NotApplied()
	default:
		inv.Failed(res.Err)
	}
	l.note(call{node: node, write: true, began: began, ended: ended, acked: res.Acked, err: res.Err})
}

func (l *load) read(client, node int, p loadtest.Pair) {
	inv := l.rec.Invoke(p, client, linearizability.GetAllStates)
	began := time.Now()
	s, res := l.nodes[node].AllStates(context.Background(), p, true)
	ended := time.Now()
	if res.Err == nil {
		inv.Done(linearizability.Output{State: linearizability.State{Read: s.ArtifactRead, InFeed: s.ArtifactInUserFeed}})
	} else {
		inv.Failed(res.Err)
	}
	l.note(call{node: node, began: began, ended: ended, err: res.Err})
}

func (l *load) note(c call) {
	if c.err != nil {
		c.reason = l.classify(c)
	}
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

// classify says what kind of failure c is; the contract allows 503 and
// 504 with a JSON error body, and no answer only from a killed api node.
func (l *load) classify(c call) string {
	var se *loadtest.StatusError
	switch {
	case errors.As(c.err, &se) && (se.Status == 503 || se.Status == 504) && se.Code != "":
		return fmt.Sprintf("%d %s", se.Status, se.Code)
	case errors.As(c.err, &se):
		return fmt.Sprintf("VIOLATION: %d %q (only 503/504 JSON errors are allowed)", se.Status, se.Code)
	case errors.Is(c.err, loadtest.ErrUnexpectedAnswer):
		return "VIOLATION: " + c.err.Error()
	case connectionLost(c.err) && l.nodeDown(c.node, c.began, c.ended):
		return "no answer (api node down)"
	default:
		return "VIOLATION: no answer: " + c.err.Error()
	}
}

// neverSent reports a request that failed before a connection was made
// (a killed api node refuses it): it cannot have had any effect.
func neverSent(err error) bool {
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

// snapshot returns the calls so far.
func (l *load) snapshot() []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]call(nil), l.calls...)
}

// okSince counts the successful calls through node that began after t.
func (l *load) okSince(node int, t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if c.node == node && c.err == nil && c.began.After(t) {
			n++
		}
	}
	return n
}
