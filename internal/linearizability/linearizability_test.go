package linearizability

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var pair = Key{UserID: "Smith", ArtifactID: 1}

// ms is a time of a hand-written history.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func done(client int, kind Kind, call, ret int, s State) Op {
	return Op{Client: client, Kind: kind, Call: ms(call), Return: ms(ret), Output: Output{State: s}}
}

func unknown(client int, kind Kind, call int) Op {
	return Op{Client: client, Kind: kind, Call: ms(call), Unknown: true, Note: "504 timeout"}
}

func verdict(t *testing.T, ops ...Op) Verdict {
	t.Helper()
	rep, err := Check(History{pair: ops}, Options{Timeout: time.Minute})
	require.NoError(t, err)
	require.Len(t, rep.Pairs, 1)
	return rep.Pairs[0].Verdict
}

var (
	empty  = State{}
	inFeed = State{InFeed: true}
	read   = State{Read: true}
)

// store is one pair applying operations one at a time: linearizable by
// construction, unless stale, when reads answer the state before the
// latest write.
type store struct {
	mu          sync.Mutex
	state, prev State
	stale       bool
}

func (s *store) do(kind Kind) Output {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind.IsWrite() {
		s.prev = s.state
		s.state = s.state.apply(kind)
		return Output{}
	}
	if s.stale {
		return Output{State: s.prev}
	}
	return Output{State: s.state}
}

// run has clients call random operations on the pairs' stores through r.
func run(r *Recorder, stores map[Key]*store, clients, opsPerClient int) {
	keys := make([]Key, 0, len(stores))
	for k := range stores {
		keys = append(keys, k)
	}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for range opsPerClient {
				k := keys[rng.IntN(len(keys))]
				kind := Kind(1 + rng.IntN(6))
				call := r.Invoke(k, c, kind)
				out := stores[k].do(kind)
				call.Done(out)
			}
		})
	}
	wg.Wait()
}

func TestConcurrentLinearizableHistoryPasses(t *testing.T) {
	t.Parallel()
	r := NewRecorder()
	stores := map[Key]*store{}
	for a := range 3 {
		stores[Key{UserID: "Smith", ArtifactID: int64(a)}] = &store{}
	}
	run(r, stores, 8, 200)
	h := r.History()
	require.Equal(t, 1600, h.Len())
	rep, err := Check(h, Options{Timeout: time.Minute, Visualization: filepath.Join(t.TempDir(), "lin.html")})
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Len(t, rep.Pairs, 3)
	require.Empty(t, rep.Visualization, "nothing to show when every pair passes")
	total := 0
	for _, p := range rep.Pairs {
		require.Equal(t, Linearizable, p.Verdict)
		total += p.Operations
	}
	require.Equal(t, 1600, total)
	require.Contains(t, rep.String(), "3 pairs, 1600 operations (0 writes of unknown outcome): linearizable")
}

func TestStaleReadFails(t *testing.T) {
	t.Parallel()
	// The add was acknowledged before the read began: the read must see it.
	h := History{
		pair:                             {done(0, AddToFeed, 0, 10, empty), done(1, GetAllStates, 20, 30, empty)},
		{UserID: "Jones", ArtifactID: 2}: {done(0, SetRead, 0, 10, empty), done(1, IsRead, 20, 30, read)},
	}
	path := filepath.Join(t.TempDir(), "lin.html")
	rep, err := Check(h, Options{Visualization: path})
	require.NoError(t, err)
	require.False(t, rep.OK())
	require.Equal(t, []PairResult{{UserID: "Smith", ArtifactID: 1, Verdict: NotLinearizable, Operations: 2, Writes: 1}}, rep.Failed())
	require.Equal(t, path, rep.Visualization)
	page, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(page), "<html")
	require.Contains(t, string(page), "getAllStates → read=false inFeed=false")
	require.Contains(t, rep.String(), `NOT LINEARIZABLE: ("Smith", 1) not linearizable; see `+path)

	// Overlapping the write, the same answer is fine.
	require.Equal(t, Linearizable, verdict(t, done(0, AddToFeed, 0, 25, empty), done(1, GetAllStates, 20, 30, empty)))
}

func TestStaleReadFromARecordedRunFails(t *testing.T) {
	t.Parallel()
	r := NewRecorder()
	s := &store{stale: true}
	for _, kind := range []Kind{AddToFeed, IsInFeed} { // one client: the read follows the write
		call := r.Invoke(pair, 0, kind)
		call.Done(s.do(kind))
	}
	rep, err := Check(r.History(), Options{})
	require.NoError(t, err)
	require.Equal(t, NotLinearizable, rep.Pairs[0].Verdict)
}

func TestUnknownWriteThatTookEffectPasses(t *testing.T) {
	t.Parallel()
	// Client 0's add timed out; later reads see it, then a remove.
	require.Equal(t, Linearizable, verdict(t,
		unknown(0, AddToFeed, 0),
		done(1, GetAllStates, 50, 60, inFeed),
		done(1, RemoveFromFeed, 70, 80, empty),
		done(1, IsInFeed, 90, 100, empty)))
	// Without the unknown write, nothing explains the answer.
	require.Equal(t, NotLinearizable, verdict(t, done(1, GetAllStates, 50, 60, inFeed)))
	// A write cannot take effect before it was sent.
	require.Equal(t, NotLinearizable, verdict(t, done(1, IsInFeed, 0, 5, inFeed), unknown(0, AddToFeed, 10)))
}

func TestUnknownWriteObservedNotToHaveHappenedPasses(t *testing.T) {
	t.Parallel()
	// The add timed out and every later read says it did not happen.
	require.Equal(t, Linearizable, verdict(t,
		unknown(0, AddToFeed, 0),
		done(1, IsInFeed, 50, 60, empty),
		done(1, GetAllStates, 70, 80, empty)))
	// Or it lands late, after the client gave up (a durable signal applied later).
	require.Equal(t, Linearizable, verdict(t,
		unknown(0, AddToFeed, 0),
		done(1, IsInFeed, 50, 60, empty),
		done(1, IsInFeed, 70, 80, inFeed)))
	// But it happens once: seen, then gone with nothing removing it, is wrong.
	require.Equal(t, NotLinearizable, verdict(t,
		unknown(0, AddToFeed, 0),
		done(1, IsInFeed, 50, 60, inFeed),
		done(1, IsInFeed, 70, 80, empty)))
}

func TestWriteReportingItsState(t *testing.T) {
	t.Parallel()
	reported := func(client int, kind Kind, call, ret int, s State) Op {
		op := done(client, kind, call, ret, s)
		op.Output.StateReported = true
		return op
	}
	require.Equal(t, Linearizable, verdict(t,
		reported(0, SetRead, 0, 10, read),
		reported(0, AddToFeed, 20, 30, State{Read: true, InFeed: true})))
	require.Equal(t, NotLinearizable, verdict(t,
		reported(0, SetRead, 0, 10, read),
		reported(0, AddToFeed, 20, 30, inFeed)), "the add must report read=true: the earlier write set it")
	// Concurrent writes: each report must match some order.
	require.Equal(t, Linearizable, verdict(t,
		reported(0, AddToFeed, 0, 30, State{InFeed: true}),
		reported(1, RemoveFromFeed, 5, 25, State{}),
		done(2, IsInFeed, 40, 50, inFeed)))
}

func TestSingleFlagReadsLookAtTheirFlagOnly(t *testing.T) {
	t.Parallel()
	require.Equal(t, Linearizable, verdict(t,
		done(0, SetRead, 0, 10, empty),
		done(1, IsRead, 20, 30, State{Read: true, InFeed: true}), // InFeed is not part of the answer
		done(1, IsInFeed, 40, 50, State{Read: false, InFeed: false})))
	require.Equal(t, NotLinearizable, verdict(t, done(0, SetRead, 0, 10, empty), done(1, IsRead, 20, 30, empty)))
	// Nothing clears the read flag.
	require.Equal(t, NotLinearizable, verdict(t,
		done(0, SetRead, 0, 10, empty), done(0, RemoveFromFeed, 20, 30, empty), done(1, GetAllStates, 40, 50, inFeed)))
}

func TestRecorderDropsWhatTellsNothing(t *testing.T) {
	t.Parallel()
	r := NewRecorder()
	r.Invoke(pair, 0, GetAllStates).Failed(errors.New("504 timeout")) // dropped
	r.Invoke(pair, 0, AddToFeed).NotApplied()                         // rejected: dropped
	r.Invoke(pair, 0, SetRead).Failed(errors.New("503 unavailable"))  // unknown outcome
	c := r.Invoke(pair, 1, IsRead)
	c.Done(Output{State: read})
	c.Failed(nil) // a second end is ignored
	h := r.History()
	require.Equal(t, 2, r.Dropped())
	require.Len(t, h[pair], 2)
	require.Equal(t, SetRead, h[pair][0].Kind)
	require.True(t, h[pair][0].Unknown)
	require.Equal(t, "503 unavailable", h[pair][0].Note)
	require.False(t, h[pair][1].Unknown)
	require.LessOrEqual(t, h[pair][1].Call, h[pair][1].Return)
	require.GreaterOrEqual(t, h[pair][1].Call, h[pair][0].Call, "the clock is monotonic")

	rep, err := Check(h, Options{})
	require.NoError(t, err)
	require.Equal(t, []PairResult{{UserID: "Smith", ArtifactID: 1, Verdict: Linearizable, Operations: 2, Writes: 1, UnknownWrites: 1}}, rep.Pairs)
}

func TestEncoding(t *testing.T) {
	t.Parallel()
	ops := encode(pair, []Op{
		done(1, IsInFeed, 5, 30, inFeed),
		unknown(0, AddToFeed, 0),
		done(0, SetRead, 10, 20, read),
	})
	var got []string
	for _, op := range ops {
		got = append(got, fmt.Sprintf("client %d [%v, %v] %s", op.ClientId, time.Duration(op.Call), time.Duration(op.Return),
			model.DescribeOperation(op.Input, op.Output)))
	}
	require.Equal(t, []string{
		"client 0 [0s, 0s] setArtifactAddedToUserFeed sent; outcome unknown",
		"client 1 [5ms, 5ms] isArtifactInUserFeed #0 sent",
		"client 1 [30ms, 30ms] #0 isArtifactInUserFeed → true",
		"client 0 [10ms, 20ms] setArtifactReadByUser → ok",
	}, got)
	require.Equal(t, "504 timeout", ops[0].Metadata)
}
