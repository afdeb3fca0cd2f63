package linearizability

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// intervalModel is the plain model: every operation an interval, a write
// of unknown outcome returning at infinity. Porcupine checks it directly,
// slowly when many operations overlap; the encoding must agree with it.
var intervalModel = porcupine.Model{
	Init: func() any { return State{} },
	Step: func(state, in, _ any) (bool, any) {
		s, op := state.(State), in.(Op)
		if op.Kind.IsWrite() {
			next := s.apply(op.Kind)
			return op.Unknown || !op.Output.StateReported || op.Output.State == next, next
		}
		return s.answers(op.Kind, op.Output.State), s
	},
}

func intervals(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		ret := int64(op.Return)
		if op.Unknown {
			ret = math.MaxInt64
		}
		out[i] = porcupine.Operation{ClientId: op.Client, Input: op, Call: int64(op.Call), Return: ret}
	}
	return out
}

// randomHistory is a few clients' sequential operations on a small
// timeline (so that many overlap and some touch), with answers drawn at
// random or, half the time, from a real run.
func randomHistory(rng *rand.Rand) []Op {
	var ops []Op
	s := State{}
	for c := range 1 + rng.IntN(4) {
		t := rng.IntN(4)
		for range 1 + rng.IntN(4) {
			kind := Kind(1 + rng.IntN(6))
			op := Op{Client: c, Kind: kind, Call: ms(t)}
			t += rng.IntN(6)
			op.Return = ms(t)
			t += rng.IntN(3)
			switch {
			case kind.IsWrite() && rng.IntN(5) == 0:
				op.Unknown = true
			case kind.IsWrite() && rng.IntN(4) == 0:
				op.Output = Output{State: State{Read: rng.IntN(2) == 0, InFeed: rng.IntN(2) == 0}, StateReported: true}
			case !kind.IsWrite() && rng.IntN(2) == 0:
				op.Output.State = s
			case !kind.IsWrite():
				op.Output.State = State{Read: rng.IntN(2) == 0, InFeed: rng.IntN(2) == 0}
			}
			if kind.IsWrite() {
				s = s.apply(kind)
			}
			ops = append(ops, op)
		}
	}
	return ops
}

func TestEncodingAgreesWithTheIntervalModel(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	verdicts := map[bool]int{}
	for i := range 10000 {
		ops := randomHistory(rng)
		want := porcupine.CheckOperations(intervalModel, intervals(ops))
		got := porcupine.CheckOperations(model, encode(pair, ops))
		if got != want {
			t.Fatalf("history %d: the encoding says linearizable=%t, the interval model %t:\n%+v", i, got, want, ops)
		}
		verdicts[want]++
	}
	t.Logf("linearizable: %d, not: %d", verdicts[true], verdicts[false])
	require.Greater(t, verdicts[true], 2500)
	require.Greater(t, verdicts[false], 2500)
}
