package loadtest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/artifactstate/artifactstate/workflows"
)

// Mix is the relative weight of each kind of call in the closed and open
// models: Write is one of the commands (workflows.CommandKinds) at random,
// Strong is getAllStates (GET and POST alternately), Eventual is the read
// model's eventual read of the pair.
type Mix struct {
	Write, Strong, Eventual int
}

// DefaultMix is write=20,strong=70,eventual=10.
var DefaultMix = Mix{Write: 20, Strong: 70, Eventual: 10}

// ParseMix parses "write=20,strong=70,eventual=10": weights (non-negative
// integers, not necessarily summing to 100) of the kinds named; a kind not
// named weighs 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		key = strings.TrimSpace(key)
		if !ok {
			return Mix{}, fmt.Errorf("mix %q: %q is not kind=weight", s, part)
		}
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 {
			return Mix{}, fmt.Errorf("mix %q: the weight of %s must be a non-negative integer, got %q", s, key, val)
		}
		if seen[key] {
			return Mix{}, fmt.Errorf("mix %q: %s given twice", s, key)
		}
		seen[key] = true
		switch key {
		case "write":
			m.Write = w
		case "strong":
			m.Strong = w
		case "eventual":
			m.Eventual = w
		default:
			return Mix{}, fmt.Errorf("mix %q: unknown kind %q (want write, strong, eventual)", s, key)
		}
	}
	if m.Write+m.Strong+m.Eventual == 0 {
		return Mix{}, fmt.Errorf("mix %q: the weights add up to 0", s)
	}
	return m, nil
}

func (m Mix) String() string {
	return fmt.Sprintf("write=%d,strong=%d,eventual=%d", m.Write, m.Strong, m.Eventual)
}

// Mixer draws the calls of the closed and open models: a kind by the mix's
// weights, on a pair drawn uniformly from users × [0, artifacts), or from a
// list of pairs.
type Mixer struct {
	client    *Client
	mix       Mix
	users     []string
	artifacts int
	pairs     []Pair
	workers   []mixWorker
	arrivals  int
}

type mixWorker struct {
	rng *rand.Rand
	get bool // the next strong read is a GET
}

// NewMixer returns a Mixer for up to workers workers of the closed model
// (1 for the open model), its random sources derived from seed.
func NewMixer(c *Client, mix Mix, users []string, artifacts, workers int, seed uint64) *Mixer {
	m := &Mixer{client: c, mix: mix, users: users, artifacts: artifacts, workers: make([]mixWorker, max(workers, 1))}
	for i := range m.workers {
		m.workers[i].rng = rand.New(rand.NewPCG(seed, uint64(i)))
	}
	return m
}

// Next is the next call of worker (closed model; each worker from its own
// goroutine). The worker issues its writes.
func (m *Mixer) Next(worker int) Op {
	return m.draw(&m.workers[worker], worker)
}

// NewMixerOnPairs is NewMixer drawing from pairs.
func NewMixerOnPairs(c *Client, mix Mix, pairs []Pair, workers int, seed uint64) *Mixer {
	m := NewMixer(c, mix, nil, 0, workers, seed)
	m.pairs = pairs
	return m
}

// PairList is n distinct pairs over users: pair i is
// (users[i mod len(users)], i div len(users)), so every user gets about
// n/len(users) artifacts.
func PairList(users []string, n int) []Pair {
	out := make([]Pair, n)
	for i := range out {
		out[i] = Pair{UserID: users[i%len(users)], ArtifactID: int64(i / len(users))}
	}
	return out
}

// NextArrival is the next call of the open model (from one goroutine);
// every arrival is an issuer of its own.
func (m *Mixer) NextArrival() Op {
	m.arrivals++
	return m.draw(&m.workers[0], m.arrivals)
}

func (m *Mixer) draw(w *mixWorker, issuer int) Op {
	var p Pair
	if m.pairs != nil {
		p = m.pairs[w.rng.IntN(len(m.pairs))]
	} else {
		p = Pair{UserID: m.users[w.rng.IntN(len(m.users))], ArtifactID: int64(w.rng.IntN(m.artifacts))}
	}
	n := w.rng.IntN(m.mix.Write + m.mix.Strong + m.mix.Eventual)
	switch {
	case n < m.mix.Write:
		return m.client.WriteOp(workflows.CommandKinds[w.rng.IntN(len(workflows.CommandKinds))], p, issuer)
	case n < m.mix.Write+m.mix.Strong:
		w.get = !w.get
		return m.client.AllStatesOp(p, w.get)
	default:
		return m.client.EventualOp(p)
	}
}
