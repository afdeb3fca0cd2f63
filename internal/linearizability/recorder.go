package linearizability

import (
	"fmt"
	"sync"
	"time"
)

// Op is one operation of a history.
type Op struct {
	// Client is who invoked it; a client's operations are sequential.
	Client int
	Kind   Kind
	// Call and Return are the invocation and response times, from any
	// common origin (the Recorder's: when it was created).
	Call, Return time.Duration
	Output       Output
	// Unknown marks a write whose outcome is unknown: Return and Output
	// are ignored, it may take effect at any time after Call, or never.
	Unknown bool
	// Note is shown in the visualization (e.g. why the outcome is unknown).
	Note string
}

// History is what clients did, per pair.
type History map[Key][]Op

// Len is the number of operations in h.
func (h History) Len() int {
	n := 0
	for _, ops := range h {
		n += len(ops)
	}
	return n
}

// Recorder records operations as clients make them. Safe for concurrent
// use.
type Recorder struct {
	start time.Time

	mu      sync.Mutex
	history History
	dropped int
}

// NewRecorder returns a recorder whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), history: History{}}
}

// Call is an operation in progress: end it with exactly one of Done, Failed
// or NotApplied.
type Call struct {
	r      *Recorder
	key    Key
	client int
	kind   Kind
	at     time.Duration
	once   sync.Once
}

// Invoke records that client invokes kind on key now. Take it just before
// sending the request.
func (r *Recorder) Invoke(key Key, client int, kind Kind) *Call {
	if !kind.valid() {
		panic(fmt.Sprintf("linearizability: invoke of an unknown kind %d", kind))
	}
	return &Call{r: r, key: key, client: client, kind: kind, at: time.Since(r.start)}
}

// Done records the answer, received now.
func (c *Call) Done(out Output) {
	end := time.Since(c.r.start)
	c.end(func() *Op { return &Op{Client: c.client, Kind: c.kind, Call: c.at, Return: end, Output: out} })
}

// Failed records a call that failed or timed out (err says why): it may or
// may not have happened. A write is kept with an unknown outcome; a read,
// which told nothing, is dropped.
func (c *Call) Failed(err error) {
	c.end(func() *Op {
		if !c.kind.IsWrite() {
			return nil
		}
		note := "failed"
		if err != nil {
			note = err.Error()
		}
		return &Op{Client: c.client, Kind: c.kind, Call: c.at, Unknown: true, Note: note}
	})
}

// NotApplied records a call known to have had no effect (a write rejected
// with a 4xx): it is dropped.
func (c *Call) NotApplied() { c.end(func() *Op { return nil }) }

func (c *Call) end(op func() *Op) {
	c.once.Do(func() {
		o := op()
		c.r.mu.Lock()
		defer c.r.mu.Unlock()
		if o == nil {
			c.r.dropped++
			return
		}
		c.r.history[c.key] = append(c.r.history[c.key], *o)
	})
}

// History returns a copy of what was recorded so far.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := make(History, len(r.history))
	for k, ops := range r.history {
		h[k] = append([]Op(nil), ops...)
	}
	return h
}

// Dropped is the number of calls left out of the history: failed reads and
// writes known not to have been applied.
func (r *Recorder) Dropped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}
