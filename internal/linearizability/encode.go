package linearizability

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// step is what one porcupine operation of the encoding stands for.
type step uint8

const (
	stepWrite        step = iota // an acknowledged write: an interval
	stepUnknownWrite             // a write of unknown outcome, at its invocation
	stepReadBegins               // a read's invocation
	stepReadEnds                 // a read's response
)

// input is a porcupine operation's input: which step, of which operation.
type input struct {
	key  Key
	step step
	kind Kind
	read int    // the read's number within its pair (read steps)
	out  Output // the operation's answer (writes and read steps)
}

// openRead is a read between its invocation and its response.
type openRead struct {
	id      int
	kind    Kind
	want    State
	matched bool // the state has equalled its answer since it began
}

// config is one possible situation of the pair at a point of the search.
type config struct {
	flags State
	// pending counts writes of unknown outcome that may still take effect,
	// by kind (SetRead, AddToFeed, RemoveFromFeed).
	pending [3]int
	open    []openRead // by id
}

func pendingIndex(k Kind) int { return int(k - SetRead) }

// set moves c to flags s, marking the open reads s answers.
func (c config) set(s State) config {
	c.flags = s
	if s.Read {
		c.pending[pendingIndex(SetRead)] = 0 // nothing can change the read flag any more
	}
	if len(c.open) > 0 {
		open := slices.Clone(c.open)
		for i := range open {
			if !open[i].matched && s.answers(open[i].kind, open[i].want) {
				open[i].matched = true
			}
		}
		c.open = open
	}
	return c
}

// withPending lists c and every config reachable from it by applying
// pending writes of unknown outcome, in any order. Applying one that would
// change nothing is never needed (keeping it can only help), so only
// changes are explored.
func (c config) withPending() []config {
	if c.pending == [3]int{} {
		return []config{c}
	}
	out := []config{c}
	for i := 0; i < len(out); i++ {
		cur := out[i]
		for _, k := range []Kind{SetRead, AddToFeed, RemoveFromFeed} {
			if cur.pending[pendingIndex(k)] == 0 || cur.flags.apply(k) == cur.flags {
				continue
			}
			next := cur
			next.pending[pendingIndex(k)]--
			next = next.set(cur.flags.apply(k))
			if !slices.ContainsFunc(out, func(o config) bool { return o.equal(next) }) {
				out = append(out, next)
			}
		}
	}
	return out
}

func (c config) equal(o config) bool {
	return c.flags == o.flags && c.pending == o.pending && slices.Equal(c.open, o.open)
}

// hash is FNV-1a over the config's fields.
func (c config) hash() uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) { h = (h ^ v) * 1099511628211 }
	mix(bit(c.flags.Read) | bit(c.flags.InFeed)<<1)
	for _, n := range c.pending {
		mix(uint64(n))
	}
	for _, r := range c.open {
		mix(uint64(r.id)<<1 | bit(r.matched))
	}
	return h
}

func bit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// next is every config op can lead to from c (none: op cannot be next).
func (c config) next(in input) []config {
	var out []config
	for _, c := range c.withPending() {
		switch in.step {
		case stepWrite:
			s := c.flags.apply(in.kind)
			if in.out.StateReported && in.out.State != s {
				continue
			}
			out = append(out, c.set(s))
		case stepUnknownWrite:
			c.pending[pendingIndex(in.kind)]++
			if c.flags.Read && in.kind == SetRead {
				c.pending[pendingIndex(SetRead)] = 0
			}
			out = append(out, c)
		case stepReadBegins:
			r := openRead{id: in.read, kind: in.kind, want: in.out.State, matched: c.flags.answers(in.kind, in.out.State)}
			i, _ := slices.BinarySearchFunc(c.open, r.id, func(o openRead, id int) int { return cmp.Compare(o.id, id) })
			c.open = slices.Insert(slices.Clone(c.open), i, r)
			out = append(out, c)
		case stepReadEnds:
			i, found := slices.BinarySearchFunc(c.open, in.read, func(o openRead, id int) int { return cmp.Compare(o.id, id) })
			if !found || !c.open[i].matched {
				continue
			}
			c.open = slices.Delete(slices.Clone(c.open), i, i+1)
			out = append(out, c)
		}
	}
	return out
}

func (c config) String() string {
	var b strings.Builder
	b.WriteString(c.flags.String())
	var pend []string
	for _, k := range []Kind{SetRead, AddToFeed, RemoveFromFeed} {
		if n := c.pending[pendingIndex(k)]; n > 0 {
			pend = append(pend, fmt.Sprintf("%d× %s", n, k))
		}
	}
	if len(pend) > 0 {
		fmt.Fprintf(&b, ", may still apply %s", strings.Join(pend, ", "))
	}
	waiting := 0
	for _, r := range c.open {
		if !r.matched {
			waiting++
		}
	}
	if waiting > 0 {
		fmt.Fprintf(&b, ", %d open reads not yet answered", waiting)
	}
	return b.String()
}

// model is the encoding's model, partitioned by pair.
var model = (&porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		var keys []Key
		byKey := map[Key][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(input).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{config{}} },
	Step: func(state, in, _ any) []any {
		next := state.(config).next(in.(input))
		out := make([]any, len(next))
		for i, c := range next {
			out[i] = c
		}
		return out
	},
	Equal: func(a, b any) bool { return a.(config).equal(b.(config)) },
	Hash:  func(s any) uint64 { return s.(config).hash() },
	DescribeOperation: func(in, _ any) string {
		i := in.(input)
		switch i.step {
		case stepUnknownWrite:
			return i.kind.String() + " sent; outcome unknown"
		case stepReadBegins:
			return fmt.Sprintf("%s #%d sent", i.kind, i.read)
		case stepReadEnds:
			return fmt.Sprintf("#%d %s", i.read, describe(i.kind, i.out))
		}
		return describe(i.kind, i.out)
	},
	DescribeState: func(s any) string { return s.(config).String() },
	DescribeOperationMetadata: func(info any) string {
		if info == nil {
			return ""
		}
		return fmt.Sprint(info)
	},
}).ToModel()

// encode turns one pair's operations into porcupine's: an acknowledged
// write as its interval, a write of unknown outcome as the instant of its
// invocation, a read as the instants of its invocation and response.
// ClientId is the client's rank among the pair's clients.
func encode(k Key, ops []Op) []porcupine.Operation {
	sorted := slices.Clone(ops)
	slices.SortStableFunc(sorted, func(a, b Op) int { return cmp.Compare(a.Call, b.Call) })
	lanes := map[int]int{}
	out := make([]porcupine.Operation, 0, 2*len(sorted))
	reads := 0
	for _, op := range sorted {
		lane, ok := lanes[op.Client]
		if !ok {
			lane = len(lanes)
			lanes[op.Client] = lane
		}
		var meta any
		if op.Note != "" {
			meta = op.Note
		}
		at := func(in input, call, ret int64) porcupine.Operation {
			return porcupine.Operation{ClientId: lane, Input: in, Call: call, Return: ret, Metadata: meta}
		}
		call, ret := int64(op.Call), int64(max(op.Return, op.Call))
		switch {
		case op.Kind.IsWrite() && op.Unknown:
			out = append(out, at(input{key: k, step: stepUnknownWrite, kind: op.Kind}, call, call))
		case op.Kind.IsWrite():
			out = append(out, at(input{key: k, step: stepWrite, kind: op.Kind, out: op.Output}, call, ret))
		default:
			in := input{key: k, kind: op.Kind, read: reads, out: op.Output}
			reads++
			in.step = stepReadBegins
			out = append(out, at(in, call, call))
			in.step = stepReadEnds
			out = append(out, at(in, ret, ret))
		}
	}
	return out
}
