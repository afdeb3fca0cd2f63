package loadtest

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxMessages bounds the distinct error messages kept per call; the rest
// are counted under otherMessages.
const (
	maxMessages   = 20
	otherMessages = "(other errors)"
)

// recorder collects the outcome of every call of a run.
type recorder struct {
	start time.Time

	mu        sync.Mutex
	calls     map[string]*callRecord
	completed int
	errors    int
	dropped   int
	inFlight  int
	canceled  int
	last      time.Time // when the last call completed
}

// callRecord is everything recorded about one call, by second of the run.
type callRecord struct {
	seconds   []second
	byStatus  map[int]int
	byMessage map[string]int
	failed    int // non-retriable errors
}

type second struct {
	latencies []float64 // ms, successful calls completed in this second
	errors    int
	dropped   int
}

func newRecorder() *recorder {
	return &recorder{start: time.Now(), calls: map[string]*callRecord{}}
}

func (r *recorder) call(name string) *callRecord {
	c := r.calls[name]
	if c == nil {
		c = &callRecord{byStatus: map[int]int{}, byMessage: map[string]int{}}
		r.calls[name] = c
	}
	return c
}

func (c *callRecord) second(i int) *second {
	if i < 0 {
		i = 0
	}
	for len(c.seconds) <= i {
		c.seconds = append(c.seconds, second{})
	}
	return &c.seconds[i]
}

// run performs op now and records it, latency measured from now.
func (r *recorder) run(ctx context.Context, op Op) {
	r.begin()
	began := time.Now()
	res := op.Do(ctx)
	r.record(ctx, op.Call, began, time.Now(), res)
}

func (r *recorder) begin() {
	r.mu.Lock()
	r.inFlight++
	r.mu.Unlock()
}

// record files the result of a call that began at began and ended at end.
// A call cut short because ctx was cancelled (the run was interrupted) is
// counted as canceled, not as an error.
func (r *recorder) record(ctx context.Context, call string, began, end time.Time, res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
	if res.Err != nil && ctx.Err() != nil && errors.Is(res.Err, context.Canceled) {
		r.canceled++
		return
	}
	r.completed++
	if end.After(r.last) {
		r.last = end
	}
	c := r.call(call)
	s := c.second(int(end.Sub(r.start) / time.Second))
	if res.Err == nil {
		s.latencies = append(s.latencies, float64(end.Sub(began))/float64(time.Millisecond))
		return
	}
	r.errors++
	s.errors++
	c.byStatus[res.Status]++
	msg := errorMessage(res.Err)
	if _, ok := c.byMessage[msg]; !ok && len(c.byMessage) >= maxMessages {
		msg = otherMessages
	}
	c.byMessage[msg]++
	if !res.Retriable() {
		c.failed++
	}
}

// drop counts an arrival of the open model that was not started.
func (r *recorder) drop(call string, due time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped++
	r.call(call).second(int(due.Sub(r.start)/time.Second)).dropped++
}

func (r *recorder) progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Progress{Elapsed: time.Since(r.start), Completed: r.completed, Errors: r.errors, Dropped: r.dropped, InFlight: r.inFlight}
}

// errorMessage is err without the per-request details a *url.Error adds
// (method and URL, which may name the pair), so equal failures count
// together.
func errorMessage(err error) string {
	var u *url.Error
	if errors.As(err, &u) {
		err = u.Err
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	return msg
}

// report builds the report of the run so far.
func (r *recorder) report(ctx context.Context) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.last
	if end.Before(r.start) || r.completed == 0 {
		end = time.Now()
	}
	window := end.Sub(r.start).Seconds()
	rep := &Report{
		Started:         r.start.UTC(),
		DurationSeconds: window,
		Interrupted:     ctx.Err() != nil,
		Canceled:        r.canceled,
	}
	// Total is the stats of all the calls' records merged.
	all := &callRecord{byStatus: map[int]int{}, byMessage: map[string]int{}}
	for _, name := range sortCalls(r.calls) {
		c := r.calls[name]
		rep.Calls = append(rep.Calls, c.stats(name, window))
		for i, s := range c.seconds {
			m := all.second(i)
			m.latencies = append(m.latencies, s.latencies...)
			m.errors += s.errors
			m.dropped += s.dropped
		}
		for k, v := range c.byStatus {
			all.byStatus[k] += v
		}
		for k, v := range c.byMessage {
			all.byMessage[k] += v
		}
		all.failed += c.failed
	}
	rep.Total = all.stats("all", window)
	return rep
}

func (c *callRecord) stats(name string, window float64) CallStats {
	st := CallStats{Call: name, NonRetriable: c.failed}
	var all []float64
	for i, s := range c.seconds {
		all = append(all, s.latencies...)
		st.OK += len(s.latencies)
		st.Errors += s.errors
		st.Dropped += s.dropped
		p := Point{Second: i, Count: len(s.latencies) + s.errors, Errors: s.errors, Dropped: s.dropped}
		if len(s.latencies) > 0 {
			slices.Sort(s.latencies)
			p.P50 = percentile(s.latencies, 50)
			p.P99 = percentile(s.latencies, 99)
		}
		st.Timeline = append(st.Timeline, p)
	}
	st.Count = st.OK + st.Errors
	st.Throughput = throughput(st.Count, window)
	st.Latency = latencyOf(all)
	st.ErrorsByStatus = nonEmpty(c.byStatus)
	st.ErrorsByMessage = nonEmpty(c.byMessage)
	return st
}

func throughput(n int, window float64) float64 {
	if window <= 0 {
		return 0
	}
	return float64(n) / window
}

// nonEmpty is m, or nil when m is empty (so a report round-trips through
// JSON with omitempty).
func nonEmpty[K comparable](m map[K]int) map[K]int {
	if len(m) == 0 {
		return nil
	}
	return m
}
